"""The one markdown-table writer."""

import pytest

from pyro_dgm.tables import markdown_table, published_table


def test_markdown_table_has_a_header_rule_and_one_line_per_row():
    text = markdown_table(["model", "NLL"], [["vae", 101.5], ["iwae", "99.1"]])
    assert text.splitlines() == ["| model | NLL |", "|---|---|", "| vae | 101.5 |",
                                 "| iwae | 99.1 |"]
    assert published_table("NLL (nats)", [("NADE", "88.33", "Larochelle 2011")]).splitlines()[2] \
        == "| NADE | 88.33 | Larochelle 2011 |"


def test_a_row_of_the_wrong_width_is_refused():
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        markdown_table(["a", "b", "c"], [[1, 2]])
