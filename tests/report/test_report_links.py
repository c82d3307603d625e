"""The report inlines only regular files inside the run folder: a link out of it, a FIFO or a device is
left out (issue 19, class 6), and the page is still written."""

import base64
import os
import shutil

from difflab.report.html import write_report


def test_links_out_of_the_run_and_special_files_are_not_inlined(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run.path, tmp_path / "run")
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\n" + b"outside the run folder" * 8)
    (run / "samples").mkdir(exist_ok=True)
    final = run / "samples" / "final.png"
    final.unlink(missing_ok=True)
    final.symlink_to(secret)
    (run / "edit").mkdir()
    (run / "edit" / "leak.png").symlink_to(secret)
    (run / "eval").mkdir(exist_ok=True)
    os.mkfifo(run / "eval" / "pipe.json")  # opening it for reading would block a plain reader forever
    (run / "eval" / "zero.json").symlink_to("/dev/zero")
    page = write_report(run).read_text()
    assert base64.b64encode(secret.read_bytes()).decode()[:40] not in page
    assert "difflab report" in page and secret.read_bytes().startswith(b"\x89PNG")  # the target is untouched
