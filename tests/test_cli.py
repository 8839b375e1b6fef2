import subprocess
import sys

from tuilab import __version__


def test_version_and_placeholder():
    out = subprocess.run([sys.executable, "-m", "tuilab", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == f"tuilab {__version__}"
    out = subprocess.run([sys.executable, "-m", "tuilab"], capture_output=True, text=True,
                         check=True)
    assert "adam" in out.stdout and "qhadam" in out.stdout


def test_engine_never_imports_textual():
    code = ("import sys, tuilab.engine.fit, tuilab.engine.schedules, tuilab.cli; "
            "sys.exit('textual' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
