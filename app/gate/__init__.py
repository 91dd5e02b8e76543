"""The promotion gate: may SOURCE be promoted to TARGET?"""
