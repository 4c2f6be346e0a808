"""Commands that need no MIS of your own: `simulate` serves one, `demo` runs a whole night."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from registerwatch.cli._common import (
    FormatOption,
    OutputFormat,
    _emit_json,
    _escape,
    _print_table,
    app,
    err,
    out,
)
from registerwatch.cli.syncing import _print_sync_summary, _SyncProgress


class SimVendor(StrEnum):
    ARBOR = "arbor"
    ISAMS = "isams"
    GO4SCHOOLS = "go4schools"


# The example config's school for each vendor, so `simulate` + the example config just work.
EXAMPLE_SCHOOL_IDS = {"arbor": "oakfield", "isams": "wenlock", "go4schools": "brookside"}


@app.command("simulate")
def simulate(
    vendor: Annotated[
        SimVendor | None, typer.Option("--vendor", help="which MIS style to serve")
    ] = None,
    port: Annotated[int, typer.Option("--port", help="port on 127.0.0.1 (0: any free port)")] = 0,
    seed: Annotated[
        int, typer.Option("--seed", help="generator seed (same seed, same school)")
    ] = 1,
    pupils: Annotated[int, typer.Option("--pupils", help="pupils on the generated school")] = 300,
    school_id: Annotated[
        str | None,
        typer.Option(
            "--school-id",
            help="school the data is generated for (default: the example config's "
            "school for this vendor)",
        ),
    ] = None,
    no_amendments: Annotated[
        bool,
        typer.Option("--no-amendments", help="serve no amendment history, as most real MIS APIs"),
    ] = False,
    faults: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            help="arm a fault, KIND[:TIMES] (429, 500, 502, 503, slow, html, empty, "
            "stale, changing, expiring_tokens, malformed, deadlock); TIMES 0 = until stopped",
        ),
    ] = None,
    receiver: Annotated[
        bool,
        typer.Option(
            "--receiver",
            help="serve a local authority's returns receiver instead of an MIS: what the "
            "example config's HTTP transports send to",
        ),
    ] = False,
    receiver_dir: Annotated[
        Path | None,
        typer.Option("--dir", help="with --receiver: folder to store the received returns in"),
    ] = None,
) -> None:
    """Serve a generated school in a vendor's API style on 127.0.0.1 until Ctrl-C, or with
    --receiver a local authority's returns receiver.

    Faults can also be switched at run time: POST /_sim/faults {"kind": "429", "times": 2}.

    Example: registerwatch simulate --vendor arbor --port 8101
    """
    if receiver:
        if vendor is not None:
            raise typer.BadParameter("give --vendor or --receiver, not both", param_hint="--vendor")
        _serve_receiver(port, receiver_dir)
        return
    if vendor is None:
        raise typer.BadParameter(
            "which MIS style to serve: arbor, isams or go4schools (or --receiver)",
            param_hint="--vendor",
        )
    from registerwatch.simulator.generate import generate_school
    from registerwatch.simulator.server import FaultInjector, FaultKind, SimulatorServer
    from registerwatch.simulator.vendors import PROFILES, build_app, credentials_environ

    injector = FaultInjector()
    for spec in faults or []:
        kind, _, times = spec.partition(":")
        try:
            count = int(times) if times else 1
            injector.arm(FaultKind(kind), times=None if count == 0 else count)
        except ValueError:
            raise typer.BadParameter(
                f"{spec!r}: expected KIND[:TIMES], KIND one of "
                f"{', '.join(k.value for k in FaultKind)}",
                param_hint="--fault",
            ) from None
    school_id = school_id or EXAMPLE_SCHOOL_IDS[vendor.value]
    try:
        school = generate_school(seed, pupils, school_id=school_id, vendor=vendor.value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--pupils") from None
    try:
        server = SimulatorServer(
            build_app(vendor.value, school, faults=injector, serve_amendments=not no_amendments),
            port=port,
        )
    except OSError as exc:  # most often EADDRINUSE: another simulator on the port
        err.print(
            f"[bold red]error:[/] cannot listen on 127.0.0.1:{port}: "
            f"{_escape(exc.strerror or str(exc))}; choose another --port (0 picks a free one)",
            highlight=False,
        )
        raise typer.Exit(1) from None
    base_url = PROFILES[vendor.value].base_url(server.url)
    err.print(
        f"serving school {school_id!r}: {len(school.pupils)} pupils, registers "
        f"{school.calendar.terms[0].start} to the day before {school.as_of}, "
        f"{vendor.value} style at {base_url}",
        highlight=False,
    )
    err.print(
        "set these before `registerwatch sync` (the simulator's own credentials):", highlight=False
    )
    for name, value in credentials_environ(school_id, vendor.value).items():
        err.print(f"  export {name}={value}", highlight=False)
    err.print(
        f"then: registerwatch sync --school {school_id} --as-of {school.as_of}  "
        "(Ctrl-C here to stop the simulator)",
        highlight=False,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def _serve_receiver(port: int, folder: Path | None) -> None:
    from registerwatch.simulator.receiver import DEFAULT_TOKEN, ReceiverServer

    server = ReceiverServer(port=port, folder=folder.absolute() if folder else None)
    where = f"; stored in {_escape(str(folder))}" if folder else ""
    err.print(f"receiving LA returns at {server.url('<la-code>')}{where}", highlight=False)
    err.print(
        "set the token the example config's transports send (Ctrl-C here to stop):",
        highlight=False,
    )
    for code in ("893", "330"):
        err.print(f"  export LA{code}_RETURNS_TOKEN={DEFAULT_TOKEN}", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@app.command("demo")
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="folder for the store and outputs")
    ] = Path("registerwatch-demo"),
    pupils: Annotated[int, typer.Option("--pupils", help="pupils on the generated school")] = 300,
    seed: Annotated[int, typer.Option("--seed", help="generator seed")] = 1,
    vendor: Annotated[
        SimVendor, typer.Option("--vendor", help="MIS style to simulate")
    ] = SimVendor.ARBOR,
    fmt: FormatOption = OutputFormat.TABLE,
) -> None:
    """Run a whole night on a simulated school: sync, scan, report, returns, submit.

    Needs no config and no network: the MIS is a simulator on loopback, the store a fresh
    SQLite file in DIR, and returns are "submitted" to folders in DIR/outbox.

    Example: registerwatch demo --dir /tmp/registerwatch-demo
    """
    from registerwatch.jobs.demo import run_demo

    live = fmt is OutputFormat.TABLE and sys.stdout.isatty()
    with _SyncProgress(enabled=live) as progress:
        try:
            result = run_demo(
                directory,
                pupils=pupils,
                seed=seed,
                vendor=vendor.value,
                progress=progress.update if live else None,
                on_step=progress.step if live else None,
            )
        except ValueError as exc:  # the generator refuses a school too small for its breaches
            raise typer.BadParameter(str(exc), param_hint="--pupils") from None
    if fmt is OutputFormat.JSON:
        _emit_json(result.to_dict())
        return
    out.print(
        f"[bold]registerwatch demo[/]: {_escape(result.school_name)} "
        f"({result.vendor}-style simulator), registers to {result.as_of}",
        highlight=False,
    )
    _print_sync_summary(result.sync)
    stats = result.statistics
    table = Table("measure", "value", title="Attendance so far (DfE method)")
    for label, key in (
        ("possible sessions", "possible"),
        ("attendance %", "attendance_rate"),
        ("overall absence %", "overall_absence_rate"),
        ("authorised absence %", "authorised_absence_rate"),
        ("unauthorised absence %", "unauthorised_absence_rate"),
    ):
        table.add_row(label, str(stats[key]))
    _print_table(table)
    night = Table("step", "outcome", "what happened", title="The night's work")
    for step in result.night.steps:
        counts = ", ".join(
            f"{k} {v}" for k, v in step.counts.items() if isinstance(v, int) and v and k != "run_id"
        )
        night.add_row(step.name, step.outcome, _escape(counts or "-"))
    _print_table(night)
    findings = ", ".join(f"{n} {severity}" for severity, n in sorted(result.findings.items()))
    out.print(f"open findings: {findings or 'none'}", highlight=False)
    ledger = "verified" if result.ledger_ok else "BROKEN"
    out.print(
        f"amendment ledger: {result.ledger_entries} entries, hash chain {ledger}", highlight=False
    )
    for name, path in result.files.items():
        out.print(f"{name.replace('_', '.')}: {_escape(str(path))}", highlight=False)
    if "report_html" in result.files:
        out.print(
            f"[bold]open the report:[/] {_escape(result.files['report_html'].as_uri())}",
            highlight=False,
        )
