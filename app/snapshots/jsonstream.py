"""A push document read as it arrives: the top-level object's fields one by one, and the
elements of its `resources` array one at a time, so that a push of a million resources never
holds all of them parsed at once.

Each value is still parsed by the standard library's C scanner, with the strict rules of
`load_json` (no NaN or Infinity, no key given twice, bounded nesting); this module only walks
the outer object and array between those values, and reads the bytes in blocks, decoded by
their byte order mark as `decode_text` decodes a whole file. (A streaming parser library walks
every value in Python, or, with its C backend, builds objects with no way to refuse a key
given twice: hence the standard scanner, driven value by value.)
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import Any, BinaryIO, NamedTuple

from app.config.loader import encoding_of, undecodable
from app.errors import InvalidInput
from app.snapshots.schemas import finite_float, no_constant, unique_keys

BLOCK = 1 << 20  # bytes read at a time
# A parse error this close to the end of what has been read may only mean that the value
# goes on in the next block (a literal, a number or an escape cut in two).
_LOOKAHEAD = 16
_SPACE = " \t\n\r"

# ("field", (name, value)) for each top-level field but `resources`; when `resources` is an
# array, ("resources", None) where it starts and ("item", Item) for each element;
# ("document", value) when the top level is not an object at all (the validation refuses it).
Event = tuple[str, Any]


class Item(NamedTuple):
    """An element of `resources`, with what its text says of its size: its length, and how
    many `{` and `[` it holds (more than its depth can be). Both None for an element not
    read from text."""

    value: Any
    chars: int | None = None
    containers: int | None = None


_DECODER = json.JSONDecoder(
    parse_constant=no_constant, parse_float=finite_float, object_pairs_hook=unique_keys
)


class _Text:
    """The stream's text, decoded block by block, and where any position of it is."""

    def __init__(self, raw: BinaryIO, where: str) -> None:
        self.raw = raw
        self.where = where
        head = raw.read(4)
        self.skip, self.codec, self.name = encoding_of(head)
        self.decoder = codecs.getincrementaldecoder(self.codec)()
        self.fed = 0  # bytes given to the decoder, after the byte order mark
        self.lines = 0  # newlines in the text already dropped from the front of `buf`
        self.line_start = 0  # where the current line starts, relative to `buf` (<= 0)
        self.buf = ""
        self.eof = False
        self._feed(head[self.skip :], final=False)

    def _feed(self, block: bytes, final: bool) -> None:
        pending = self.decoder.getstate()[0]
        try:
            text = self.decoder.decode(block, final=final)
        except UnicodeDecodeError as exc:
            raise self._not_text(self.fed - len(pending), exc) from None
        self.fed += len(block)
        self.buf += text
        self.eof = final

    def _not_text(self, base: int, exc: UnicodeDecodeError) -> InvalidInput:
        """As `decode_text` says it: the encoding, the line and the byte offset."""
        before = exc.object[: exc.start].decode(self.codec, errors="replace")
        line = self.lines + self.buf.count("\n") + before.count("\n") + 1
        why = undecodable(self.name, self.codec, exc, line, self.skip + base + exc.start)
        return InvalidInput(f"{self.where}: {why}; nothing stored")

    def more(self) -> bool:
        """Reads another block; False once the stream has ended."""
        if self.eof:
            return False
        block = self.raw.read(BLOCK)
        self._feed(block, final=not block)
        return True

    def drop(self, upto: int) -> None:
        """Forgets the text before `upto`, keeping count of its lines."""
        if upto <= 0:
            return
        last = self.buf.rfind("\n", 0, upto)
        if last >= 0:
            self.lines += self.buf.count("\n", 0, upto)
            self.line_start = last + 1 - upto
        else:
            self.line_start -= upto
        self.buf = self.buf[upto:]

    def position(self, pos: int) -> tuple[int, int]:
        """The line and column (from 1) of a position in `buf`."""
        last = self.buf.rfind("\n", 0, pos)
        if last >= 0:
            return self.lines + self.buf.count("\n", 0, pos) + 1, pos - last
        return self.lines + 1, pos - self.line_start + 1

    def invalid(self, pos: int, message: str) -> InvalidInput:
        line, column = self.position(pos)
        return InvalidInput(
            f"{self.where}:{line}:{column}: not valid JSON ({message}); nothing stored"
        )


class _Walker:
    """The outer object and the `resources` array, between values the scanner parses."""

    def __init__(self, text: _Text) -> None:
        self.text = text
        self.i = 0
        self.start = 0  # where the last value read began

    def _char(self) -> str:
        """The next character that is not whitespace, '' at the end of the text."""
        text = self.text
        while True:
            buf = text.buf
            i = self.i
            while i < len(buf) and buf[i] in _SPACE:
                i += 1
            self.i = i
            if i < len(buf):
                return buf[i]
            if not self._refill():
                return ""

    def _refill(self) -> bool:
        """More text, dropping what has been consumed."""
        self.text.drop(self.i)
        self.i = 0
        return self.text.more()

    def expect(self, char: str, what: str) -> None:
        if self._char() != char:
            raise self.text.invalid(self.i, f"Expecting {what}")
        self.i += 1

    def peek(self) -> str:
        return self._char()

    def skip(self) -> None:
        self.i += 1

    def value(self) -> Any:
        """The next value, however many blocks it spans."""
        self._char()
        text = self.text
        while True:
            buf = text.buf
            try:
                value, end = _DECODER.raw_decode(buf, self.i)
            except json.JSONDecodeError as exc:
                cut = exc.msg.startswith("Unterminated string") or exc.pos >= len(buf) - _LOOKAHEAD
                if cut and not text.eof:
                    self._refill()
                    continue
                raise text.invalid(exc.pos, exc.msg) from None
            except RecursionError:
                message = "nested too deep to read"
                raise InvalidInput(f"{text.where}: {message}; nothing stored") from None
            except ValueError as exc:  # a key given twice, NaN
                raise InvalidInput(
                    f"{text.where}: not valid JSON ({exc}); nothing stored"
                ) from None
            if end > len(buf) - _LOOKAHEAD and not text.eof:
                self._refill()  # a number near the end ("0." of "0.5") may go on
                continue
            self.start, self.i = self.i, end
            return value

    def end(self) -> None:
        if self._char():
            raise self.text.invalid(self.i, "Extra data")


def events(raw: BinaryIO, where: str = "the body") -> Iterator[Event]:
    """The push document's top-level fields and resources, in the order the stream has them
    (see Event); InvalidInput, saying where, for bytes that are not text or text that is not
    strict JSON. Events already yielded may precede the error: the caller stores nothing
    until the stream has ended."""
    walker = _Walker(_Text(raw, where))
    if walker.peek() != "{":
        if not walker.peek():
            raise walker.text.invalid(walker.i, "Expecting value")
        document = walker.value()
        walker.end()
        yield "document", document
        return
    walker.skip()
    seen: set[str] = set()
    if walker.peek() == "}":
        walker.skip()
    else:
        while True:
            if walker.peek() != '"':
                raise walker.text.invalid(
                    walker.i, "Expecting property name enclosed in double quotes"
                )
            name = walker.value()
            if name in seen:
                raise InvalidInput(
                    f"{where}: not valid JSON (duplicate key {name[:80]!r}); nothing stored"
                )
            seen.add(name)
            walker.expect(":", "':' delimiter")
            if name == "resources" and walker.peek() == "[":
                walker.skip()
                yield "resources", None
                yield from _items(walker)
            else:
                yield "field", (name, walker.value())
            if _closed(walker, "}"):
                break
    walker.end()


def _items(walker: _Walker) -> Iterator[Event]:
    if walker.peek() == "]":
        walker.skip()
        return
    while True:
        value = walker.value()
        buf, start, end = walker.text.buf, walker.start, walker.i
        containers = buf.count("{", start, end) + buf.count("[", start, end)
        yield "item", Item(value, end - start, containers)
        if _closed(walker, "]"):
            return


def _closed(walker: _Walker, closing: str) -> bool:
    """After a member or element: True at the closing bracket, False at a comma."""
    char = walker.peek()
    walker.skip()
    if char == closing:
        return True
    if char != ",":
        raise walker.text.invalid(walker.i - 1, "Expecting ',' delimiter")
    return False
