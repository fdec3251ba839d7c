"""METEOR and SPICE: the COCO caption evaluation's two Java scorers (the jars pycocoevalcap ships), run as
child processes on captions already tokenised as the other caption metrics see them.

VL-Adapter's captions are scored by ``language_evaluation.CocoEvaluator``, which prints BLEU-1..4, METEOR,
ROUGE-L, CIDEr and SPICE (tvc_data.py:359-369, caption_clip_data.py:394). Its METEOR is Meteor 1.5 run as
``java -jar -Xmx2G meteor-1.5.jar - - -stdio -l en -norm``: a ``SCORE ||| ref … ||| hypothesis`` line per
caption answered by that caption's statistics, then one ``EVAL ||| stats …`` line answered by each caption's
score and the corpus score. Its SPICE is ``spice-1.0.jar``, which parses captions with Stanford CoreNLP 3.6.0
(two jars pycocoevalcap does not ship: its ``get_stanford_models`` downloads them).

Meteor's start (its paraphrase table) costs about 8 CPU seconds, so a process keeps one Meteor child for all its
evaluations, whatever their number of captions (killed when the process exits, or when it fails or overruns
an evaluation's timeout, and then started afresh). Without Java or a jar a scorer raises ``Unavailable`` with a
one-line reason, which the metric records as its absence.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import math
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

METEOR_JAR = "meteor-1.5.jar"
SPICE_JAR = "spice-1.0.jar"
CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")
CORENLP_DIR = "PEFTBENCH_CORENLP_DIR"  # a folder holding CORENLP_JARS (else pycocoevalcap's spice/lib)
TIMEOUT_S = 3600  # a scorer's whole run; Meteor on TVC's 10k validation captions takes well under a minute


class Unavailable(RuntimeError):
    """A Java scorer that cannot run here; the message is one line saying why (``java not found``)."""


def java() -> str:
    """The ``java`` on PATH, or ``Unavailable``."""
    found = shutil.which("java")
    if found is None:
        raise Unavailable("java not found")
    return found


def evalcap_dir(sub: str) -> Path:
    """A folder of the installed pycocoevalcap (``meteor``, ``spice``), or ``Unavailable``."""
    spec = importlib.util.find_spec("pycocoevalcap")
    roots = list(spec.submodule_search_locations or []) if spec else []
    if not roots:
        raise Unavailable("pycocoevalcap not installed")
    return Path(roots[0]) / sub


def needed(path: Path) -> Path:
    if not path.is_file():
        raise Unavailable(f"{path.name} not found in {path.parent}")
    return path


def meteor(references: list[list[str]], hypotheses: list[str], *,
           timeout_s: float = TIMEOUT_S) -> tuple[float, list[float]]:
    """(corpus METEOR, each caption's) in [0, 1] of ``hypotheses`` against their ``references``, from this process's
    Meteor 1.5 child fed as the COCO evaluation feeds it (``|||`` and double spaces taken out of hypotheses)."""
    folder = evalcap_dir("meteor")
    command = (java(), "-jar", "-Xmx2G", needed(folder / METEOR_JAR).name, "-", "-", "-stdio", "-l", "en", "-norm")
    with _METEOR_LOCK:
        child = _meteor_child(command, folder)
        watchdog = threading.Timer(timeout_s, child.proc.kill)
        watchdog.start()
        try:
            stats = [child.ask(" ||| ".join(("SCORE", *refs, hyp.replace("|||", "").replace("  ", " "))))
                     for refs, hyp in zip(references, hypotheses, strict=True)]
            child.send(" ||| ".join(("EVAL", *stats)))
            scores = [float(child.ask(None)) for _ in range(len(stats) + 1)]
        except (Unavailable, ValueError):
            child.stop()  # a child that failed or was killed is never asked again
            raise
        finally:
            watchdog.cancel()
    return scores[-1], scores[:-1]


class _Child:
    """A child process spoken to line by line: ``ask(line)`` writes ``line`` and reads one line back
    (``ask(None)`` reads only); ``stop()`` kills and reaps it."""

    def __init__(self, command: tuple[str, ...], *, name: str, cwd: Path):
        self.command, self.name, self.owner = command, name, os.getpid()
        try:
            self.proc = subprocess.Popen(command, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, text=True, encoding="utf-8")
        except OSError as exc:
            raise Unavailable(f"java did not start ({exc.strerror or exc})") from None

    def alive(self, command: tuple[str, ...]) -> bool:
        """Whether this child can answer ``command``'s questions in this process (not a forked copy's)."""
        return self.command == command and self.owner == os.getpid() and self.proc.poll() is None

    def send(self, line: str) -> None:
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except OSError:  # a child that is gone: its missing answer says so
            pass

    def ask(self, line: str | None) -> str:
        if line is not None:
            self.send(line)
        try:
            answer = self.proc.stdout.readline()
        except OSError:
            answer = ""
        if not answer:  # the child ended: it failed, ran out of memory, or the watchdog killed it (exit -9)
            try:
                code = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                code = None  # it closed its output and lives on: stop() kills it
            raise Unavailable(f"{self.name} ended early (exit {code})")
        return answer.strip()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):  # a line still buffered for a child that is gone
                stream.close()


# One Meteor child per process, started by the first evaluation and kept for the next (the paraphrase table
# loads once: a trial's TVC and YC2C, a test run's evaluations, share it); killed when the process exits. A
# child whose parent dies sees its input end and exits too.
_METEOR_LOCK = threading.Lock()
_METEOR: list[_Child] = []


def _meteor_child(command: tuple[str, ...], folder: Path) -> _Child:
    if _METEOR and not _METEOR[0].alive(command):
        if _METEOR[0].owner == os.getpid():
            _METEOR[0].stop()
        _METEOR.clear()
    if not _METEOR:
        _METEOR.append(_Child(command, name=METEOR_JAR, cwd=folder))
    return _METEOR[0]


@atexit.register
def _stop_meteor() -> None:
    if _METEOR and _METEOR[0].owner == os.getpid():
        _METEOR.pop().stop()


def corenlp_jars() -> list[Path]:
    """Stanford CoreNLP 3.6.0's two jars, from ``$PEFTBENCH_CORENLP_DIR`` or pycocoevalcap's ``spice/lib``."""
    folder = Path(os.environ[CORENLP_DIR]).expanduser() if os.environ.get(CORENLP_DIR) else evalcap_dir("spice") / "lib"
    missing = [name for name in CORENLP_JARS if not (folder / name).is_file()]
    if missing:
        raise Unavailable(f"Stanford CoreNLP 3.6.0 jars not found ({' and '.join(missing)} in {folder}; "
                          f"set {CORENLP_DIR})")
    return [folder / name for name in CORENLP_JARS]


def spice(references: list[list[str]], hypotheses: list[str], *, timeout_s: float = TIMEOUT_S) -> float:
    """SPICE (Anderson et al., 2016) in [0, 1]: the mean over captions of the F-score of their scene-graph
    tuples, by one ``spice-1.0.jar`` run as the COCO evaluation runs it (``-subset -silent``, 8 GB heap)."""
    from peftbench.files import read_json, write_json

    folder = evalcap_dir("spice")
    jar, corenlp, launcher = needed(folder / SPICE_JAR), corenlp_jars(), java()
    classpath = os.pathsep.join(str(p) for p in [jar, *sorted((folder / "lib").glob("*.jar")), *corenlp])
    rows = [{"image_id": i, "test": hyp, "refs": refs}
            for i, (refs, hyp) in enumerate(zip(references, hypotheses, strict=True))]
    with tempfile.TemporaryDirectory(prefix="peftbench-spice-") as tmp:
        given, out = write_json(Path(tmp) / "in.json", rows), Path(tmp) / "out.json"
        command = [launcher, "-Xmx8G", "-cp", classpath, "edu.anu.spice.SpiceScorer", str(given), "-out", str(out),
                   "-subset", "-silent"]
        try:
            subprocess.run(command, cwd=folder, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=timeout_s, check=True)
        except (OSError, subprocess.SubprocessError) as exc:
            raise Unavailable(f"{SPICE_JAR} failed ({type(exc).__name__})") from None
        results = read_json(out, kind="record", cap=64 << 20)
    scores = [_number(r["scores"]["All"]["f"]) for r in results]
    return sum(scores) / len(scores)


def _number(value) -> float:
    """A SPICE score as a float: its NaN for a caption without tuples (as the COCO evaluation's float_convert)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
