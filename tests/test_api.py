import inspect

STAGES = ("train", "predict", "evaluate", "run", "open_dataset", "score_submission", "load_model")


def test_stage_functions_stay_functions_after_their_modules_load():
    import shiptoolkit.inference.prediction  # noqa: F401
    import shiptoolkit.scoring.evaluate  # noqa: F401  (importing submodules must not shadow the API)
    import shiptoolkit.training.stage  # noqa: F401

    for name in STAGES:
        assert inspect.isfunction(getattr(shiptoolkit, name)), name
        assert name in shiptoolkit.__all__


def test_import_is_light():
    import subprocess
    import sys

    code = "import shiptoolkit, sys; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
