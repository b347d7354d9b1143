"""The in-memory form of a WebAssembly module, as the codec decodes and encodes it.

Sections that no pass has touched are re-emitted from their original bytes, which makes
decode -> encode of an untouched module byte-exact even where the producer used padded
LEB128 (as wasm-ld does). A pass that changes a section calls `Module.touch(section)`.
Function bodies keep each instruction's byte range, so that unchanged instructions of a
rewritten body are copied rather than re-encoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

# An instruction: (opcode, immediate, start, end). start/end are its byte range in the
# original module, or -1 for instructions a pass created.
Instr = tuple


class Section(IntEnum):
    CUSTOM = 0
    TYPE = 1
    IMPORT = 2
    FUNCTION = 3
    TABLE = 4
    MEMORY = 5
    GLOBAL = 6
    EXPORT = 7
    START = 8
    ELEMENT = 9
    CODE = 10
    DATA = 11
    DATA_COUNT = 12
    TAG = 13


# The order the binary format requires (data count sits between element and code).
SECTION_ORDER = [
    Section.TYPE, Section.IMPORT, Section.FUNCTION, Section.TABLE, Section.MEMORY, Section.TAG,
    Section.GLOBAL, Section.EXPORT, Section.START, Section.ELEMENT, Section.DATA_COUNT,
    Section.CODE, Section.DATA,
]


class ExternKind(IntEnum):
    FUNC = 0
    TABLE = 1
    MEMORY = 2
    GLOBAL = 3
    TAG = 4


@dataclass(frozen=True)
class FuncType:
    params: tuple[int, ...]
    results: tuple[int, ...]


@dataclass(frozen=True)
class Limits:
    min: int
    max: int | None
    flags: int = 0  # bit 0: has max, bit 1: shared, bit 2: 64-bit index

    @property
    def shared(self) -> bool:
        return bool(self.flags & 2)

    @property
    def index64(self) -> bool:
        return bool(self.flags & 4)


@dataclass(frozen=True)
class TableType:
    reftype: int
    limits: Limits


@dataclass(frozen=True)
class GlobalType:
    valtype: int
    mutable: bool


@dataclass
class Import:
    module: str
    name: str
    kind: ExternKind
    desc: int | TableType | Limits | GlobalType  # type index for functions
    offset: int = -1


@dataclass
class Global:
    type: GlobalType
    init: list[Instr]  # constant expression, without its final `end`
    offset: int = -1


@dataclass
class Export:
    name: str
    kind: ExternKind
    index: int
    offset: int = -1


@dataclass
class Element:
    """An element segment in any of the eight binary forms (flags 0..7)."""

    flags: int
    table: int
    offset_expr: list[Instr] | None  # active segments only
    reftype: int  # elemkind 0x00 is stored as funcref
    func_indices: list[int] | None  # forms using function indices
    exprs: list[list[Instr]] | None  # forms using expressions
    offset: int = -1

    @property
    def mode(self) -> str:
        if self.flags & 1 == 0:
            return "active"
        return "declarative" if self.flags & 2 else "passive"


@dataclass
class Data:
    flags: int  # 0 active memory 0, 1 passive, 2 active with memory index
    memory: int
    offset_expr: list[Instr] | None
    init: bytes
    offset: int = -1


@dataclass
class Code:
    locals: list[tuple[int, int]]  # (count, valtype) runs
    body: list[Instr]  # every instruction, the final `end` included
    offset: int = -1  # of the body's size field

    @property
    def local_count(self) -> int:
        return sum(count for count, _ in self.locals)


@dataclass
class Custom:
    name: str
    payload: bytes
    after: int  # id of the last known section before it (0 when first)
    offset: int = -1
    raw: bytes | None = field(default=None, repr=False)  # original bytes while unchanged


@dataclass
class NameMap:
    """The parts of the `name` custom section that refer to function indices."""

    module: str | None = None
    functions: dict[int, str] = field(default_factory=dict)
    locals: dict[int, dict[int, str]] = field(default_factory=dict)
    other: list[tuple[int, bytes]] = field(default_factory=list)  # other subsections, verbatim


@dataclass
class Module:
    types: list[FuncType] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    funcs: list[int] = field(default_factory=list)  # type index of each defined function
    tables: list[TableType] = field(default_factory=list)
    memories: list[Limits] = field(default_factory=list)
    tags: list[int] = field(default_factory=list)  # exceptions: decoded only to refuse
    globals: list[Global] = field(default_factory=list)
    exports: list[Export] = field(default_factory=list)
    start: int | None = None
    elements: list[Element] = field(default_factory=list)
    data_count: int | None = None
    codes: list[Code] = field(default_factory=list)
    datas: list[Data] = field(default_factory=list)
    customs: list[Custom] = field(default_factory=list)
    names: NameMap | None = None
    # Original bytes of each section not touched since decoding: id -> full section bytes.
    raw_sections: dict[int, bytes] = field(default_factory=dict, repr=False)
    section_offsets: dict[int, int] = field(default_factory=dict, repr=False)
    present: list[int] = field(default_factory=list, repr=False)  # known sections, in order

    def touch(self, *sections: Section) -> None:
        """Mark sections as changed, so the encoder re-encodes them."""
        for section in sections:
            self.raw_sections.pop(int(section), None)
            if section not in self.present and section != Section.CUSTOM:
                self.present.append(int(section))

    # Derived views of the index spaces.

    def imported(self, kind: ExternKind) -> list[Import]:
        return [imp for imp in self.imports if imp.kind == kind]

    @property
    def num_imported_funcs(self) -> int:
        return sum(1 for imp in self.imports if imp.kind == ExternKind.FUNC)

    @property
    def num_imported_globals(self) -> int:
        return sum(1 for imp in self.imports if imp.kind == ExternKind.GLOBAL)

    def func_type_indices(self) -> list[int]:
        """Type index of every function in the function index space."""
        return [imp.desc for imp in self.imports if imp.kind == ExternKind.FUNC] + list(self.funcs)

    def func_type(self, func_index: int) -> FuncType:
        return self.types[self.func_type_indices()[func_index]]

    def global_types(self) -> list[GlobalType]:
        """Type of every global in the global index space."""
        return [imp.desc for imp in self.imports if imp.kind == ExternKind.GLOBAL] + [g.type for g in self.globals]

    def all_memories(self) -> list[Limits]:
        return [imp.desc for imp in self.imports if imp.kind == ExternKind.MEMORY] + list(self.memories)

    def all_tables(self) -> list[TableType]:
        return [imp.desc for imp in self.imports if imp.kind == ExternKind.TABLE] + list(self.tables)
