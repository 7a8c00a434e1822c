"""cloudevents-connectors as an installed library: `import cloudevents_connectors`.

`pip install <this repository>` installs one top-level package, this one, with the repository's
`components/` and `runtime/` beneath it (`cloudevents_connectors.components`,
`cloudevents_connectors.runtime`), so a program's own `components/` or `runtime/` folder never
shadows them. The components and their Args are re-exported here; the container entry points are
`python -m cloudevents_connectors.runtime.alibaba_oss_target` and `...runtime.relay` (inside the
images they stay `python -m runtime.<name>`).

In a checkout (no install) this package also resolves its subpackages from the repository root, so
`import cloudevents_connectors` works there as well.
"""

from pathlib import Path as _Path

if not (_Path(__file__).parent / "components").is_dir():
    # A checkout: the subpackages are the repository's own top-level folders.
    __path__.append(str(_Path(__file__).resolve().parent.parent))

# The components package's own export list, so the two can never drift apart (this copy had
# lost ImageBuild, PodIdentityArgs and SecretKeyRef).
from .components import *  # noqa: F403
from .components import __all__ as __all__
