"""``mcpa``: one console command for every job; ``mcpa COMMAND --help`` shows a command's flags.

Each command is the matching ``python -m`` module, which stays available:

=========  ======================  ==========================================================
command    module                  what it does
=========  ======================  ==========================================================
run        ``pipeline.run``        detect, track, embed and link cameras (SOURCEs or a YAML)
relink     ``pipeline.relink``     re-cluster a finished run's identities into a new folder
evaluate   ``pipeline.evaluate``   HOTA / CLEAR / IDF1 and multi-camera IDF1 against ground truth
render     ``pipeline.render``     annotated videos of a finished run with its final ids
adapt      ``pipeline.adapt``      adapt the ReID model to a run's own harvested crops
train      ``reid.train``          unsupervised ReID training (Market-1501 or harvested crops)
export     ``reid.export``         ONNX export of a ReID checkpoint with a parity check
=========  ======================  ==========================================================
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import PackageNotFoundError, version

COMMANDS = {
    "run": ("pipeline.run", "detect, track, embed and link cameras: mcpa run a.mp4 b.mp4 (or --cameras CAMS.yaml)"),
    "relink": ("pipeline.relink", "re-cluster a finished run's identities into a new folder"),
    "evaluate": ("pipeline.evaluate", "score a run against MOT ground truth, per camera and across cameras"),
    "render": ("pipeline.render", "draw a finished run's final ids into H.264 videos"),
    "adapt": ("pipeline.adapt", "adapt the ReID model to a run's harvested crops, label-free"),
    "train": ("reid.train", "unsupervised ReID training on Market-1501 or harvested crops"),
    "export": ("reid.export", "export a ReID checkpoint to ONNX with a parity check"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: mcpa COMMAND [ARGS ...]   (mcpa COMMAND --help for its flags)", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += [
        "",
        "Quick start (recorded clips, ids re-clustered at the end, videos with the final ids):",
        "  mcpa run sample_videos/cam0.mp4 sample_videos/cam1.mp4 --weights bgsub --offline --video --out runs/quick",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        try:
            print(f"mcpa {version('mcpa')}")
        except PackageNotFoundError:
            print("mcpa (not installed as a package)")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"mcpa: unknown command {command!r}; expected one of {', '.join(COMMANDS)}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    try:
        code = module.main(rest)
    except SystemExit as exit_:  # argparse's --help and usage errors
        code = exit_.code
    if code is None or isinstance(code, int):
        return int(code or 0)
    print(code, file=sys.stderr)  # SystemExit("error: ...") carries its message
    return 2


if __name__ == "__main__":
    sys.exit(main())
