"""Detail, logs, help and input screens of cluster-tui."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, OptionList, RichLog, Static

from kubani.cluster.rows import age, event_row
from kubani.cluster.times import event_time, parse_time
from kubani.kube.summary import amount, summarise
from kubani.printable import printable, printable_keeping_colours
from kubani.vocabulary import Role

if TYPE_CHECKING:
    from rich.console import RenderableType

    from kubani.cluster.live import ClusterSource
    from kubani.tui.state import LiveState


def _amount(resource: str, value: float | None) -> str:
    if value is None:
        return "-"
    if resource in {"memory", "ephemeral-storage"}:
        return f"{value / 2**30:.2f} GiB"
    if resource == "cpu":
        return f"{value:g}"
    return f"{value:g}"


def _add_row(table: Table, *cells: RenderableType) -> None:
    """A row of text from the API: never read as Rich markup (a plain string cell is, and
    "[/]" in a message would fail to render), control characters written out (an escape
    sequence would steer the terminal)."""
    table.add_row(*(Text(printable(c)) if isinstance(c, str) else c for c in cells))


class DetailScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("q", "app.pop_screen", "Back"),
    ]

    def __init__(self, title: str) -> None:
        super().__init__()
        self.heading = title

    def compose(self) -> ComposeResult:
        yield Static(Text(self.heading, style="bold reverse"), id="detail-title")
        with VerticalScroll(id="detail"):
            yield Static(id="detail-body")
        yield Footer()

    def body(self) -> Static:
        return self.query_one("#detail-body", Static)


class NodeScreen(DetailScreen):
    """Conditions, capacity vs allocatable (the reservations), labels, taints, pods."""

    def __init__(self, state: LiveState, name: str) -> None:
        super().__init__(f" Node {name} ")
        self.cluster = state
        self.node_name = name

    def on_mount(self) -> None:
        self.render_node()
        self.set_interval(self.cluster.refresh_s, self.render_node)

    def render_node(self) -> None:
        node = self.cluster.cache.of("nodes").get(self.node_name)
        if node is None:
            self.body().update(Text("This node is no longer in the cluster.", style="bold red"))
            return
        status = node.get("status") or {}
        meta = node.get("metadata") or {}
        summary = summarise(node, (self.cluster.metrics or {}).get(self.node_name))
        now = self.cluster.clock()
        parts: list[Any] = []
        facts = Table.grid(padding=(0, 2))
        _add_row(
            facts,
            "Status",
            Text(summary.status, style="green" if summary.ready == "True" else "bold red"),
        )
        if summary.held is not None:
            _add_row(facts, "Owner", Text(printable(summary.held.describe()), style="yellow"))
        _add_row(facts, "Roles", ", ".join(summary.roles) or Role.WORKER)
        _add_row(facts, "InternalIP", summary.internal_ip or "-")
        _add_row(facts, "Kubelet", summary.kubelet_version)
        _add_row(facts, "Age", age(meta.get("creationTimestamp"), now))
        parts.append(facts)

        conditions = Table(title="Conditions", title_justify="left", expand=True)
        for column in ("TYPE", "STATUS", "REASON", "MESSAGE"):
            conditions.add_column(column)
        for condition in status.get("conditions") or []:
            _add_row(
                conditions,
                str(condition.get("type")),
                str(condition.get("status")),
                str(condition.get("reason") or ""),
                str(condition.get("message") or ""),
            )
        parts.append(conditions)

        resources = Table(title="Capacity and allocatable", title_justify="left", expand=True)
        for column in ("RESOURCE", "CAPACITY", "ALLOCATABLE", "RESERVED"):
            resources.add_column(column)
        capacity, allocatable = status.get("capacity") or {}, status.get("allocatable") or {}
        for resource in sorted(set(capacity) | set(allocatable)):
            total, left = amount(capacity.get(resource)), amount(allocatable.get(resource))
            reserved = total - left if total is not None and left is not None else None
            _add_row(
                resources,
                resource,
                _amount(resource, total),
                _amount(resource, left),
                _amount(resource, reserved),
            )
        parts.append(resources)

        labels = Table(title="Labels and taints", title_justify="left", expand=True)
        labels.add_column("KEY")
        labels.add_column("VALUE")
        for key, value in sorted((meta.get("labels") or {}).items()):
            _add_row(labels, key, str(value))
        for taint in summary.taints:
            _add_row(labels, Text("taint", style="yellow"), taint)
        parts.append(labels)

        pods = Table(title="Pods on this node", title_justify="left", expand=True)
        for column in ("NAMESPACE", "NAME", "PHASE", "AGE"):
            pods.add_column(column)
        for pod in self.cluster.cache.pods_on(self.node_name):
            pod_meta = pod.get("metadata") or {}
            _add_row(
                pods,
                str(pod_meta.get("namespace")),
                str(pod_meta.get("name")),
                str((pod.get("status") or {}).get("phase")),
                age(pod_meta.get("creationTimestamp"), now),
            )
        parts.append(pods)
        from rich.console import Group

        self.body().update(Group(*parts))


class WorkloadScreen(DetailScreen):
    """A workload's pods, where they run, and the recent events about them."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *DetailScreen.BINDINGS,
        Binding("l", "logs", "Logs of its first pod"),
    ]

    def __init__(self, state: LiveState, row_key: str) -> None:
        super().__init__(f" {row_key.replace(':', ' ', 1)} ")
        self.cluster = state
        self.row_key = row_key

    def on_mount(self) -> None:
        self.render_workload()
        self.set_interval(self.cluster.refresh_s, self.render_workload)

    def render_workload(self) -> None:
        from rich.console import Group

        found = self.cluster.cache.workload(self.row_key)
        if found is None:
            self.body().update(Text("This workload is gone.", style="bold red"))
            return
        (_kind, _key), counts = found
        now = self.cluster.clock()
        pods = Table(
            title=f"Pods ({counts.ready}/{counts.total} ready)", title_justify="left", expand=True
        )
        for column in ("POD", "NODE", "PHASE", "READY", "RESTARTS"):
            pods.add_column(column)
        names = set()
        for key, facts in sorted(counts.pods.items()):
            names.add(key.split("/", 1)[1])
            _add_row(
                pods,
                key,
                facts.node or "-",
                facts.phase,
                "yes" if facts.ready else "no",
                str(facts.restarts),
            )
        workload_name = self.row_key.split("/", 1)[-1]
        names.add(workload_name)
        events = Table(title="Recent events", title_justify="left", expand=True)
        for column in ("LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"):
            events.add_column(column)
        related = [
            e for e in self.cluster.cache.of("events").values()
            if (e.get("involvedObject") or {}).get("name") in names
            or str((e.get("involvedObject") or {}).get("name", "")).startswith(workload_name + "-")
        ]  # fmt: skip
        related.sort(key=lambda e: str(parse_time(event_time(e)) or ""), reverse=True)
        for event in related[:30]:
            seen, kind, reason, about, message = event_row(event, now).cells
            _add_row(
                events,
                seen,
                kind,
                reason,
                about,
                Text(message, style="yellow" if kind == "Warning" else ""),
            )
        self.body().update(Group(pods, events))

    def action_logs(self) -> None:
        found = self.cluster.cache.workload(self.row_key)
        pods = sorted(found[1].pods) if found else []
        if not pods:
            self.notify("no pods", timeout=3)
            return
        namespace, _, name = pods[0].partition("/")
        self.app.push_screen(LogsScreen(self.cluster.source, namespace, name))


class LogsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("q", "app.pop_screen", "Back"),
    ]

    def __init__(self, source: ClusterSource, namespace: str, pod: str) -> None:
        super().__init__()
        self.source = source
        self.namespace = namespace
        self.pod = pod

    def compose(self) -> ComposeResult:
        yield Static(Text(f" Logs of {self.namespace}/{self.pod} ", style="bold reverse"))
        yield RichLog(id="logs", wrap=True, highlight=False)
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(exclusive=True)
    async def load(self) -> None:
        from kubani.errors import KubaniError

        log = self.query_one("#logs", RichLog)
        try:
            text = await self.source.pod_log(self.namespace, self.pod)
        except KubaniError as exc:
            log.write(Text(exc.line(), style="bold red"))
            return
        if not text:
            log.write(Text("No logs: the API returned none for this pod.", style="dim"))
            return
        for line in text.splitlines():
            log.write(Text.from_ansi(printable_keeping_colours(line)))


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Close"),
        Binding("question_mark", "app.pop_screen", "Close"),
        Binding("q", "app.pop_screen", "Close"),
    ]

    def __init__(self, bindings: list[BindingType]) -> None:
        super().__init__()
        self.bindings_shown = bindings

    def compose(self) -> ComposeResult:
        table = Table(title="cluster-tui keys", expand=True)
        table.add_column("KEY")
        table.add_column("ACTION")
        for binding in self.bindings_shown:
            if isinstance(binding, Binding):
                key = {"slash": "/", "question_mark": "?", "tab": "Tab", "enter": "Enter"}.get(
                    binding.key, binding.key
                )
                table.add_row(key, binding.description)
        table.add_row("Esc", "Back / close")
        with Vertical(id="help"):
            yield Static(table)


class FilterScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt"):
            yield Static("Filter every table (empty to clear):")
            yield Input(value=self.current, id="filter-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class NamespaceScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    ALL = "(all namespaces)"

    def __init__(self, namespaces: list[str], current: str | None) -> None:
        super().__init__()
        self.namespaces = namespaces
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt"):
            yield Static("Show one namespace:")
            yield OptionList(self.ALL, *self.namespaces, id="namespaces")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        choice = str(event.option.prompt)
        self.dismiss("" if choice == self.ALL else choice)

    def action_cancel(self) -> None:
        self.dismiss(None)
