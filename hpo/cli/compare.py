"""``hpo compare MANUAL.toml STUDY…``: hand-picked configs against the automated search."""

from __future__ import annotations

import argparse
from typing import Any

from hpo.cli import COMMANDS
from hpo.cli._args import add_storage_argument, positive_int, wrapped

EPILOG = """\
Each config of MANUAL.toml is re-trained SEEDS times on the folds of the study that serves
its scheduler family (the `family` of the study's trials), scored on what the study scored
its trials on (validation, CV or test), and stored as manual trials in the study
<MANUAL stem>-manual; runs already stored are reused. Then the verdict: per family the two
best hand-picked configs and the search's --top trials, each chosen on that score, are
trained with the same seeds on every non-test row and scored once on the held-out test
part; the best of each side are compared with a paired 95% interval over the seeds and a
plain sentence. Also shown: how many trials and epochs the search needed to beat the best
hand-picked config. compare.md and compare.png are written to --out.
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "compare", help=COMMANDS["compare"], epilog=EPILOG,
        description=wrapped("Re-train the hand-picked configs of MANUAL.toml on the folds of "
                            "the automated studies and compare them, per scheduler family."),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manual", metavar="MANUAL.toml", help="the hand-picked configs")
    parser.add_argument("studies", metavar="STUDY", nargs="+",
                        help="stored studies, one per scheduler family")
    parser.add_argument("--seeds", type=positive_int, default=3,
                        help="seeds each config is trained with (default: 3)")
    parser.add_argument("--top", type=positive_int, default=3,
                        help="search trials per family scored on the test part (default: 3)")
    add_storage_argument(parser)
    parser.add_argument("--out", default="compare",
                        help="folder for compare.md and compare.png (default: ./compare)")
    parser.add_argument("--no-progress", action="store_true", help="no progress output")
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    # torch, optuna, pandas and scipy load for the comparison, not for --help.
    from hpo.results.compare import compare
    from hpo.results.compare_text import markdown
    from hpo.results.manual import manual_study_name

    table = compare(args.manual, args.studies, storage=args.storage, seeds=args.seeds,
                    out=args.out, top=args.top, progress=not args.no_progress)
    print(markdown(table))
    print(f"Manual trials are in the study {manual_study_name(args.manual)!r}; "
          f"wrote {args.out}/compare.md and {args.out}/compare.png.")
    return 0
