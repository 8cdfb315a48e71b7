"""The package's public surface: re-exports, and an import that needs only torch and captum."""
import subprocess
import sys

import captum_3dcam


def test_public_names_resolve():
    for name in captum_3dcam.__all__:
        assert getattr(captum_3dcam, name) is not None, name


def test_import_does_not_pull_optional_dependencies():
    code = (
        "import sys, captum_3dcam; "
        "print(','.join(m for m in ('scipy', 'av', 'torchvision', 'nbclient') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported eagerly: {out.stdout.strip()}"
