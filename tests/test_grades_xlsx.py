"""grades.xlsx, read back with openpyxl: the columns of grades.csv, numbers as numbers, never a formula."""
from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path

from openpyxl import load_workbook

from grader.report.outputs import write_outputs
from grader.report.results import from_json

FIXTURES = Path(__file__).parent / "fixtures" / "results"


def _result(name: str, sid: str, **changes: object) -> dict:
    result = from_json(json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8")), name)
    result = copy.deepcopy(result)
    result.update(submission_id=sid, **changes)
    return result


def test_the_workbook_has_the_csvs_rows_with_numbers_as_numbers_and_no_formula(tmp_path):
    results = [
        _result("passes_all_reference", "2024001", student_name="李华", section="1班"),
        _result("fails_lstm_first_step_logits", "=HYPERLINK(\"http://x\",\"y\")", file="@SUM(A1).ipynb"),
        _result("ungraded_not_a_notebook", "carol"),
    ]
    paths = write_outputs(results, tmp_path, "zh", log=io.StringIO())
    book = load_workbook(paths.grades_xlsx)
    sheet = book["grades"]
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    csv_rows = list(csv.reader(io.StringIO(paths.grades_csv.read_text(encoding="utf-8-sig"))))
    assert rows[0] == csv_rows[0] and len(rows) == len(csv_rows) == 5
    header = rows[0]
    total, lstm_forward = header.index("total"), header.index("lstm.forward")
    assert rows[1][0] == "POINTS_POSSIBLE" and rows[1][total] == 100 and isinstance(rows[1][lstm_forward], (int, float))
    assert rows[2][0] == "2024001" and rows[2][1] == "李华" and rows[2][total] == 100  # the id stays text
    assert rows[3][total] == 66 and isinstance(rows[3][total], (int, float))
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)  # no formula anywhere
    assert rows[3][0].startswith("'") and rows[3][header.index("file")].startswith("'")
    assert {"notebook", "rnn", "lstm", "loop"} <= set(book.sheetnames)
    lstm = [[c.value for c in row] for row in book["lstm"].iter_rows()]
    assert lstm[0][:2] == ["id", "name"] and all(h.startswith("lstm.") for h in lstm[0][2:])


def test_control_characters_in_an_id_or_a_name_cost_no_one_their_workbook(tmp_path):
    results = [_result("passes_all_reference", "bo\x01b", student_name="Bob\x08"),
               _result("scores_zero_untouched_template", "c\x1b[31mred")]
    paths = write_outputs(results, tmp_path, "en", log=io.StringIO())
    assert paths.failures == []
    rows = [[c.value for c in row] for row in load_workbook(paths.grades_xlsx)["grades"].iter_rows()]
    assert rows[2][2 - 1] == "Bob\ufffd" and rows[2][0] == "bo\ufffdb" and rows[2][rows[0].index("total")] == 100
    assert "\x1b" not in paths.grades_csv.read_text(encoding="utf-8-sig")
