"""The built-in tasks, now declarations (tasks/builtin/*.yaml), format every fixture example byte for
byte, and list as ``peftbench tasks`` did, as the Python declarations before them: the golden file
tests/tasks/golden/task_examples.json was written by scripts/task_examples_golden.py at commit bb9a641
(whose built-in tasks are beb62ae's, before task files), not by the code under test; COCO's metric list has since
gained METEOR and SPICE by hand (issue 24: their evaluator prints them)."""

import json
from pathlib import Path

import pytest

from peftbench.files import read_json
from peftbench.tasks import catalog, get_task, task_names
from peftbench.tasks.declared import DeclaredTask
from peftbench.tasks.video import TASKS as VIDEO_TASKS

GOLDEN_FILE = Path(__file__).parent / "golden" / "task_examples.json"
GOLDEN = read_json(GOLDEN_FILE, kind="config", cap=1 << 20)


def golden_module():
    import importlib.util

    path = Path(__file__).parents[2] / "scripts" / "task_examples_golden.py"
    spec = importlib.util.spec_from_file_location("task_examples_golden", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_every_builtin_task_formats_its_fixtures_as_before(name):
    script = golden_module()
    task = get_task(name)
    now = {f"{split}/{'prefix' if fmt.prefix else 'plain'}/{fmt.labels}": script.digest(task, rows, fmt)
           for split, rows in task.load("fixtures").items() for fmt in script.FORMATS}
    now["listing"] = catalog.describe(task)
    assert json.loads(json.dumps(now)) == GOLDEN[name]


def test_the_plain_label_tasks_are_declarations_and_the_rest_python():
    declared = sorted(n for n in task_names() if isinstance(get_task(n), DeclaredTask))
    assert declared == sorted(["cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "boolq", "cb", "copa",
                               "wic"])
    # the video tasks came after the golden file (tests/tasks/test_video_tasks.py pins their formats)
    assert set(GOLDEN) == set(task_names()) - {t.name for t in VIDEO_TASKS}
    assert get_task("stsb").metric_directions == {"pearson": "higher", "spearman": "higher"}
    assert get_task("cb").metric_names == ("macro_f1", "accuracy") and get_task("boolq").epochs == 20
