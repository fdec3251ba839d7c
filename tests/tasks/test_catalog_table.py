"""``peftbench tasks``: the listing's columns line up on every row, the long VL names included."""

from peftbench.tasks.catalog import list_tasks, table


def test_every_row_starts_each_column_where_the_header_does():
    rows = list_tasks()
    lines = table(rows).splitlines()
    header = lines[0]
    starts = [header.index(h) for h in ("hub", "metrics", "fixture")]
    number_ends = [header.index(h) + len(h) for h in ("src", "tgt", "epochs")]
    assert len(lines) == len(rows) + 2 and set(lines[1]) == {"-"}
    for row, line in zip(rows, lines[2:], strict=False):
        hub = f"{row['hub']['path']}:{row['hub']['config']}"
        assert [line.index(hub, 1), line.index(", ".join(row["metrics"]), starts[1])] == starts[:2], line
        assert line.endswith("/".join(str(row["fixture_sizes"][s]) for s in ("train", "validation", "test")))
        assert line.rindex("  ", 0, starts[2]) + 2 == starts[2], line  # sizes start under their header
        numbers = [row["max_source_length"], row["max_target_length"], row["epochs"]]
        assert [line.index(f" {n}", e - len(str(n)) - 1) + 1 + len(str(n))
                for n, e in zip(numbers, number_ends, strict=False)] == number_ends, line
    assert any(len(r["name"]) > 8 for r in rows)  # coco-caption: wider than the old fixed column
