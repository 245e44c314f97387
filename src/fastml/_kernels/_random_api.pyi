from typing import Any

API_VERSION: int
__pyx_capi__: dict[str, Any]
