"""The README's two set-up commands stay true: CI runs the test command verbatim."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    text = (ROOT / "README.md").read_text()
    head = text.split("---", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", head, flags=re.S)


def test_readme_starts_with_two_commands():
    run_cmd, test_cmd = readme_commands()
    assert "disentangle run recipes/quickstart.toml" in run_cmd
    assert (ROOT / "recipes" / "quickstart.toml").is_file()
    assert "pytest" in test_cmd and "constraints.txt" in run_cmd and "constraints.txt" in test_cmd


def test_ci_runs_the_readme_test_command():
    _, test_cmd = readme_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_cmd.strip() in ci, "the README's test command must be what .ci/run runs"


def test_readme_picture_exists():
    assert (ROOT / "docs" / "images" / "quickstart-swap.png").stat().st_size > 1000
