#!/usr/bin/env python3
"""The app on a full-size model: the release binary under Xvfb, driven like .ci/journeys, runs
text→image on MODEL (e.g. the Karlo-shaped model of make_karlo_shaped.py) at 2/2/2 steps with
default memory settings, photographs the window while each stage runs (its live preview) and
when the result is in, and checks that the result is a 256 px picture in the gallery.

    Xvfb :95 -screen 0 1400x900x24 &
    JOURNEY_DISPLAY=95 python3 tests/reference/karlo_app_check.py MODEL [SHOTS_DIR]

Not part of CI: a full-size model needs 14 GB of disk and several minutes a run.
"""
import importlib.machinery
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
journeys = importlib.machinery.SourceFileLoader("journeys", os.path.join(ROOT, ".ci", "journeys")).load_module()


def png_size(path):
    """(width, height) from a PNG's IHDR chunk."""
    with open(path, "rb") as f:
        head = f.read(24)
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def main():
    model = os.path.abspath(sys.argv[1])
    shots = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.path.join(journeys.TARGET, "karlo-app"))
    journeys.MODEL, journeys.SHOTS, journeys.TIMEOUT = model, shots, 1800.0
    home = tempfile.mkdtemp(prefix="unclip-karlo-app-")
    config = os.path.join(home, ".config", "unclip")
    os.makedirs(config)
    stage = lambda guidance: {"steps": 2, "guidance": guidance, "sampler": "ddpm", "eta": 0.0}
    with open(os.path.join(config, "settings.json"), "w") as f:
        json.dump({"prior": stage(4.0), "decoder": stage(8.0), "super_res_steps": 2}, f)
    with open(os.path.join(home, "app.log"), "w") as log:
        app = journeys.App(home, log)
        app.type_into("Prompt", "a red circle")
        app.key("Return")
        started, seen = time.time(), 0
        while "thumbnail 0" not in app.map():
            if app.proc.poll() is not None:
                raise journeys.Failed(f"the app exited with {app.proc.returncode}")
            if time.time() - started > journeys.TIMEOUT:
                raise journeys.Failed("no result in time")
            if time.time() - started > 30 * seen:
                print(f"  at {time.time() - started:.0f} s:", app.shot(f"running-{seen}"))
                seen += 1
            time.sleep(1.0)
        print(f"result after {time.time() - started:.0f} s")
        journeys.check_layout(app, "karlo-result", "result image")
        app.close()
    gallery = os.path.join(home, ".local", "share", "unclip", "gallery")
    sizes = [png_size(os.path.join(gallery, f)) for f in sorted(os.listdir(gallery)) if f.endswith(".png")]
    print("gallery:", sizes)
    if not sizes or sizes[0] != (256, 256):
        raise journeys.Failed(f"expected one 256×256 result, found {sizes}")
    print("log:", os.path.join(home, "app.log"))


if __name__ == "__main__":
    main()
