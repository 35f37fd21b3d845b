"""Screenshot every URL of a file: ``python dispatcher.py urls.txt --out run1/``
(the root ``dispatcher.py`` and the ``screenshots`` console script both call :func:`main`).

With ``CELERY_BROKER_URL`` set, URLs go through RabbitMQ to Celery workers (any number, on
any machines) and screenshots to the S3 bucket ``SCREENSHOT_BUCKET``. Without it, the same
capture code runs here with ``--concurrency`` parallel browsers, and screenshots are stored
in the output directory (or in S3 if ``SCREENSHOT_BUCKET`` is set).

Writes ``OUT/results.jsonl`` (one row per input URL, as results arrive), ``OUT/results.csv``
and ``OUT/report.html``; with ``--compare EARLIER_OUT``, each URL is compared with that run
(:mod:`screenshots.batch.compare`) and the alerts go to ``OUT/changes.jsonl``. Running the
same command again resumes: URLs already ``ok`` in ``OUT`` are not shot again. Exit status: 0
when every line got a result (errors included), 1 when the run could not start or finish, 2
for bad arguments or settings, or a URL file that cannot be read as records at all (one line
saying why, no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engines import engine_names
from screenshots.batch.inputs import InputError, count_lines, read_shots
from screenshots.batch.manifest import JSONL_NAME, Manifest
from screenshots.batch.progress import Progress
from screenshots.core.errors import ConfigurationError, InvalidOption
from screenshots.core.keys import capture_digest
from screenshots.core.options import CaptureOptions, OptionSpec, option_specs
from screenshots.core.options.loose import name_value
from screenshots.core.result import Result
from screenshots.core.settings import Settings, load_settings
from screenshots.core.shot import Shot
from screenshots.delivery.runner import Runner

if TYPE_CHECKING:
    from screenshots.batch.compare import Summary

JOB_FILE = "job.json"

#: What only the end of a run uses: the report (it groups screenshots with numpy and scipy) and
#: the comparison (it diffs images with numpy). Importing them took ~250 of the ~430 ms the
#: command spent importing before it published its first URL (``python -X importtime``), and the
#: whole fleet waited for it. In a distributed run they are imported in the background once the
#: run is under way (:class:`LateImports`), while the workers capture. Not in an embedded run:
#: there the capture threads import scipy on their own (imagehash's ``phash`` does, on its first
#: call), and two threads importing parts of one package at once can meet in a circular import
#: that Python resolves by raising in one of them.
LATE_MODULES = ("screenshots.batch.report",)
COMPARE_MODULE = "screenshots.batch.compare"


class LateImports:
    """Import ``modules`` on a thread of their own, started by :meth:`start`.

    Python's import lock makes a module the main thread asks for while the thread is importing
    it wait for that import, not import it twice; :meth:`wait` is called before the command
    exits either way, so no import is cut off by the interpreter's shutdown.
    """

    def __init__(self, modules: Sequence[str]) -> None:
        self._modules = tuple(modules)
        self._thread = threading.Thread(
            target=self._run, args=(self._modules,), name="late-imports", daemon=True
        )

    @staticmethod
    def _run(modules: tuple[str, ...]) -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the main thread's own import raises it again
                return

    def start(self) -> None:
        """Start importing (the first call; later calls, or no modules, do nothing)."""
        if self._modules and self._thread.ident is None:
            self._thread.start()

    def wait(self) -> None:
        if self._thread.ident is not None:
            self._thread.join()


class UsageError(Exception):
    """Bad arguments or settings: exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dispatcher.py",
        description="Take a screenshot of every URL in a file.",
        epilog="Settings come from the environment; see README.md.",
    )
    parser.add_argument(
        "urls", type=Path,
        help="file with one URL per line, or JSON Lines / CSV with per-URL options",
    )
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory")
    parser.add_argument(
        "--engine", default=None, help=f"capture engine: {', '.join(engine_names())}"
    )
    parser.add_argument(
        "--concurrency", type=int, default=None,
        help="parallel captures in embedded mode, tabs of one browser (default: SCREENSHOT_TABS)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=None,
        help="URLs per task message in distributed mode (default 2 x SCREENSHOT_TABS: a task "
        "keeps its worker browser's tabs busy)",
    )
    parser.add_argument(
        "--max-in-flight", type=int, default=None,
        help="URLs published and not yet finished, at most (distributed mode)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    parser.add_argument(
        "--compare", type=Path, default=None, metavar="EARLIER_OUT",
        help="compare with the run in this output directory: each URL new, gone, unchanged or "
        "changed, with a diff image (options ignore and changed_above; OUT/changes.jsonl)",
    )
    add_delivery_arguments(parser)
    add_capture_arguments(parser)
    return parser


def add_capture_arguments(parser: argparse.ArgumentParser) -> None:
    """A flag per capture option of the declaration (:mod:`screenshots.core.options.model`):
    the defaults for every URL of the file.

    A JSON Lines or CSV row overrides them. Values are read like file cells (see
    :func:`screenshots.core.options.coerce`), so a bad one is the same one-line error;
    ``--css`` and ``--js`` take ``@path`` to read a file.
    """
    group = parser.add_argument_group("capture options (a row of a JSONL/CSV file overrides them)")
    for spec in option_specs():
        flag: dict[str, Any] = {"dest": spec.name, "default": None, "help": flag_help(spec)}
        if spec.kind is bool:
            flag["action"] = "store_true"
        else:
            if spec.option.repeat:
                flag["action"] = "append"
            if spec.kind in (int, float):
                flag["type"] = spec.kind
            if spec.option.metavar:
                flag["metavar"] = spec.option.metavar
            elif spec.choices:  # not argparse's choices: a bad one is an option error
                flag["metavar"] = "|".join(spec.choices)
        group.add_argument(spec.flag, **flag)


def flag_help(spec: OptionSpec) -> str:
    """The ``--help`` line of an option: its help text, bounds, default, repetition."""
    notes = []
    if spec.bounds():
        notes.append(spec.bounds())
    if spec.default not in (None, (), False):
        notes.append(f"default {spec.default:g}" if spec.kind is float else
                     f"default {spec.default}")
    if spec.option.from_file:
        notes.append("or @file")
    if spec.option.repeat:
        notes.append("repeatable")
    return f"{spec.help} ({', '.join(notes)})" if notes else spec.help


def add_delivery_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags about how the work is delivered, not about what the screenshots look like."""
    parser.add_argument(
        "--max-age", type=float, default=None, metavar="SECONDS",
        help="reuse a screenshot of the same URL and options taken less than this long ago",
    )
    parser.add_argument(
        "--high-water", type=int, default=None, metavar="N",
        help="pause publishing while the work queue holds more than N messages (default 5000)",
    )


def options_from_args(args: argparse.Namespace) -> CaptureOptions:
    """The default capture options of the run, from the flags."""
    values: dict[str, Any] = {}
    try:
        for spec in option_specs():
            value = getattr(args, spec.name, None)
            if value is None:
                continue
            separator = spec.option.pair_separator
            if separator and isinstance(value, list):  # --header 'X-A: 1' --header ...
                value = dict(name_value(spec.name, item, separator) for item in value)
            if spec.option.from_file and isinstance(value, str) and value.startswith("@"):
                value = Path(value[1:]).read_text(encoding="utf-8")
            values[spec.name] = value
        return CaptureOptions.from_dict(values)
    except InvalidOption as exc:
        raise UsageError(exc.message) from None
    except OSError as exc:
        raise UsageError(f"cannot read {exc.filename}: {exc.strerror}") from None


def job_id_for(out_dir: Path, options: CaptureOptions) -> str:
    """The job's id: random on the first run into ``out_dir``, the same on every rerun."""
    path = out_dir / JOB_FILE
    job: dict[str, str] = {}
    if path.exists():
        try:
            job = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            job = {}
    if "id" not in job:
        job["id"] = str(uuid.uuid4())
        path.write_text(json.dumps(job), encoding="utf-8")
    digest = capture_digest("", options)
    return str(uuid.uuid5(uuid.UUID(job["id"]), digest))


def make_runner(
    args: argparse.Namespace, settings: Settings, engine: str, options: CaptureOptions
) -> Runner:
    if settings.distributed:
        missing = settings.missing_result_backend()
        if missing:
            raise UsageError(missing)
        if not settings.bucket:
            raise UsageError(
                "SCREENSHOT_BUCKET is required with CELERY_BROKER_URL: workers store "
                "screenshots in S3"
            )
        from screenshots.delivery.distributed import (
            DEFAULT_HIGH_WATER,
            DEFAULT_MAX_IN_FLIGHT,
            DistributedRunner,
            default_batch_size,
        )

        return DistributedRunner(
            settings,
            job_id_for(args.out, options),
            engine,
            batch_size=args.batch_size or default_batch_size(settings),
            max_in_flight=args.max_in_flight or DEFAULT_MAX_IN_FLIGHT,
            high_water=args.high_water or DEFAULT_HIGH_WATER,
            max_age=args.max_age,
        )
    from screenshots.delivery.embedded import EmbeddedRunner
    from screenshots.storage import create_storage

    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    storage = create_storage(settings, args.out)
    return EmbeddedRunner(settings, storage, engine, args.concurrency, max_age=args.max_age)


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        options = options_from_args(args)
        engine = args.engine or settings.engine
        if engine not in engine_names():
            choices = ", ".join(engine_names())
            raise UsageError(f"unknown engine {engine!r}: choose one of {choices}")
        if not args.urls.is_file():
            raise UsageError(f"cannot read {args.urls}: no such file")
        if args.compare is not None and not (args.compare / JSONL_NAME).is_file():
            raise UsageError(f"cannot compare with {args.compare}: it has no {JSONL_NAME}")
        total = count_lines(args.urls)
        manifest = Manifest(args.out)
        manifest.open()  # creates OUT, where a distributed runner keeps its job file
        try:
            runner = make_runner(args, settings, engine, options)
        except BaseException:
            manifest.close()  # a bad argument leaves no file open
            raise
    except (UsageError, ConfigurationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except InputError as exc:  # the file as a whole, found while counting its records
        print(f"error: {args.urls}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    progress = Progress(total, enabled=None if not args.quiet else False)
    late = LateImports(
        LATE_MODULES + ((COMPARE_MODULE,) if args.compare is not None else ())
        if settings.distributed
        else ()
    )
    try:
        return finish_run(args, settings, options, manifest, runner, progress, total, late)
    finally:
        late.wait()


def finish_run(
    args: argparse.Namespace,
    settings: Settings,
    options: CaptureOptions,
    manifest: Manifest,
    runner: Runner,
    progress: Progress,
    total: int,
    late: LateImports,
) -> int:
    """Shoot what ``manifest`` does not have yet, then write the CSV, report and comparison."""
    try:
        runner.check()

        def pending() -> Iterator[Shot]:
            for item in read_shots(args.urls, options):
                if isinstance(item, Result):
                    if manifest.write(item):
                        progress.update(ok=False)
                    else:
                        progress.skip()
                elif manifest.is_done(item.line, item.url):
                    progress.skip()
                else:
                    yield item

        for result in runner.run(pending()):
            late.start()  # the first URLs are out: import the report's modules meanwhile
            if manifest.write(result):
                progress.update(result.ok)
    except ConfigurationError as exc:
        progress.finish()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except InputError as exc:  # pragma: no cover - counting the records finds it first
        progress.finish()
        print(f"error: {args.urls}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        progress.finish()
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        manifest.close()
        runner.close()
    progress.finish()
    if args.compare is not None:
        from screenshots.batch.compare import summary_text

        summary = compare_with(args, settings, options)
        if not args.quiet:
            print(summary_text(summary), file=sys.stderr)
    manifest.write_csv()
    from screenshots.batch.report import write_report

    report = write_report(args.out, manifest.jsonl_path)
    if progress.done < total:
        print(f"error: {total - progress.done} URL lines got no result", file=sys.stderr)
        return 1
    if not args.quiet:
        print(progress.summary(str(args.out.resolve())), file=sys.stderr)
        print(f"report: {report.resolve()}", file=sys.stderr)
    return 0


def compare_with(args: argparse.Namespace, settings: Settings, options: CaptureOptions) -> Summary:
    """Compare the finished run in ``args.out`` with the one in ``args.compare``; each URL's
    ``ignore`` and ``changed_above`` are its own (a row of the URL file) or the flags'."""
    from screenshots.batch.compare import Comparer, compare_runs, rules_from_urls
    from screenshots.storage import create_storage

    comparer = Comparer(
        create_storage(settings, args.compare), create_storage(settings, args.out),
        rules_from_urls(args.urls, options),
    )
    return compare_runs(args.compare, args.out, comparer)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(run())


if __name__ == "__main__":
    main()
