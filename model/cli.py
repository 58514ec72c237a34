"""``thfm-synth train``, ``predict`` and ``evaluate``: argparse wiring for thfm_synth/cli.py.

    # in thfm_synth.cli.build_parser(), after the other subcommands:
    from model.cli import add_evaluate_parser, add_predict_parser, add_train_parser
    add_train_parser(sub)
    add_predict_parser(sub)
    add_evaluate_parser(sub)

Both commands import JAX lazily (only when run). Errors become the CLI's one-line errors:
an invalid config value -> ``ConfigError`` (exit 2), a missing/unreadable file or incompatible
data/checkpoint -> ``UserError`` (exit 1). The result (training summary without the per-step loss list,
or what predict wrote) is printed as one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from model.tasks import TASKS as TASK_CHOICES


def _overrides(items: list[str] | None) -> dict:
    from thfm_synth.overrides import parse_overrides

    return parse_overrides(items, "--set steps=100 --set data.shard_dir=runs/x")


def _user_errors(fn):
    def wrapped(args) -> int:
        from pydantic import ValidationError

        from thfm_synth.errors import ConfigError, UserError

        try:
            return fn(args)
        except ValidationError as exc:
            e = exc.errors()[0]
            loc = ".".join(str(x) for x in e.get("loc", ()))
            raise ConfigError(
                f"train config: {loc}: {e.get('msg')}"
                + (f" ({len(exc.errors())} errors)" if len(exc.errors()) > 1 else ""),
                "see model/train/config.py for every field and its range",
            ) from None
        except (FileNotFoundError, ValueError, KeyError) as exc:
            raise UserError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None

    return wrapped


@_user_errors
def cmd_train(args) -> int:
    from model.train import train

    summary = train(args.config, **_overrides(args.set))
    brief = {k: v for k, v in summary.items() if k not in ("losses", "loss_steps", "last_log")}
    print(json.dumps(brief, default=str))
    return 0


@_user_errors
def cmd_predict(args) -> int:
    from model.predict import predict

    out = predict(args.video, args.task, args.checkpoint, args.out, record_index=args.record, vae_weights=args.vae)
    print(json.dumps(out))
    return 0


@_user_errors
def cmd_evaluate(args) -> int:
    from model.benchmarks import layout_help, run_benchmark

    from thfm_synth.errors import ConfigError

    if args.layout:
        if args.benchmark == "shards":
            print("a held-out shard set made by `thfm-synth preprocess` (index.json, shard-*.array_record)")
        else:
            print(layout_help(args.benchmark))
        return 0
    if args.data is None or args.checkpoint is None:
        raise ConfigError("evaluate needs --data DIR and --checkpoint CKPT", "or --layout to see the expected folder")
    if args.benchmark == "shards":
        from model.evaluate import evaluate

        report = evaluate(args.checkpoint, args.data, clips=args.limit or 8, vae_weights=args.vae)
        print(json.dumps(report, default=str))
        out = report
    else:
        options = {"body_model": args.body_model} if args.body_model else {}
        result = run_benchmark(
            args.benchmark,
            args.data,
            checkpoint=args.checkpoint,
            limit=args.limit,
            vae_weights=args.vae,
            keypoint_convention=args.keypoint_convention,
            model_size=args.model_size,
            progress=not args.no_progress,
            **options,
        )
        print(result.table)
        print(f"{args.benchmark}: {len(result.samples)} samples in {result.seconds:.1f} s")
        out = result.to_dict()
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(out, indent=1, default=str))
        tmp.replace(path)
    return 0


def add_evaluate_parser(sub) -> argparse.ArgumentParser:
    from model.benchmarks import NAMES

    p = sub.add_parser(
        "evaluate",
        help="score a THFM checkpoint on one of the paper's benchmarks",
        description="Runs the paper's protocol for a benchmark on the dataset as it ships (see "
        "`--layout`) and prints the paper's table with its published numbers. "
        "`--benchmark shards` scores a held-out shard set instead (JSON).",
    )
    p.add_argument("--benchmark", required=True, choices=(*NAMES, "shards"))
    p.add_argument("--data", type=Path, help="the dataset folder (layout: --layout)")
    p.add_argument("--checkpoint", help="run checkpoint folder (latest step) or one step's folder")
    p.add_argument("--layout", action="store_true", help="print the expected folder layout and how to get the data")
    p.add_argument("--body-model", type=Path, help="SMPL / SMPL-X .npz folder (emdb, rich)")
    p.add_argument("--limit", type=int, help="only the first N samples (a smoke test, not the protocol)")
    p.add_argument("--json", type=Path, help="also write the results (per group and per sample) as JSON")
    p.add_argument("--vae", default=None, help="VAE weights (default: the checkpoint's)")
    p.add_argument(
        "--keypoint-convention",
        choices=("smpl24", "h36m17", "coco17"),
        help="the checkpoint's joint convention when it does not record it",
    )
    p.add_argument("--model-size", help="refuse a checkpoint of another model size (e.g. wan21_1_3b)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_evaluate)
    return p


def add_train_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train THFM (JAX) on preprocessed shards",
        description="Train THFM from a YAML job (jobs/train_*.yaml); resumes from the latest "
        "checkpoint in the run's checkpoint folder.",
    )
    p.add_argument("--config", required=True, type=Path, help="train config YAML (see jobs/)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config field, dotted keys, YAML values (repeatable): --set steps=100",
    )
    p.set_defaults(func=cmd_train)
    return p


def add_predict_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "predict",
        help="run a THFM checkpoint on a clip and write the predicted modality",
        description="VIDEO: a video file, a folder of frames, a .npy (T,H,W,3) array, or a shard "
        "folder (with --record).",
    )
    p.add_argument("video", help="input clip (video file, frame folder, .npy, or shard folder)")
    p.add_argument("--task", required=True, choices=TASK_CHOICES)
    p.add_argument("--checkpoint", required=True, help="run checkpoint folder (latest step) or one step's folder")
    p.add_argument("--out", default=None, help="output .mp4 (or a folder for PNG frames); default <name>_<task>.mp4")
    p.add_argument("--record", type=int, default=0, help="record index when VIDEO is a shard folder")
    p.add_argument("--vae", default=None, help="VAE weights (default: the checkpoint's)")
    p.set_defaults(func=cmd_predict)
    return p
