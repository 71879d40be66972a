"""Validation findings, collected so that every problem is reported at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from kubani.vocabulary import ProblemCode

if TYPE_CHECKING:
    from pydantic import ValidationError


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One finding: where it is (a dotted inventory path) and what is wrong."""

    severity: Severity
    where: str
    message: str
    code: ProblemCode | None = None  # for findings that code acts on

    def __str__(self) -> str:
        return f"{self.severity}: {self.where}: {self.message}"


@dataclass
class Problems:
    items: list[Problem] = field(default_factory=list)

    def error(self, where: str, message: str, code: ProblemCode | None = None) -> None:
        self.items.append(Problem(Severity.ERROR, where, message, code))

    def warning(self, where: str, message: str, code: ProblemCode | None = None) -> None:
        self.items.append(Problem(Severity.WARNING, where, message, code))

    def add_validation_error(self, where: str, exc: ValidationError) -> None:
        from kubani.models.messages import readable_errors

        for loc, message in readable_errors(exc):
            self.error(f"{where}.{loc}" if loc else where, message)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if p.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.items if p.severity is Severity.WARNING]

    def __bool__(self) -> bool:
        return bool(self.items)
