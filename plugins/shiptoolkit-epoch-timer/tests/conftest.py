import os
import sys
from pathlib import Path

# Let the plugin's tests run from a source checkout without installing it, and see only what they
# register themselves (an installed copy of this plugin would register `epoch_timer` twice).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("SHIPTOOLKIT_LOAD_PLUGINS", "")
