"""The service's endpoints, one ``APIRouter`` per concern; ``create_app`` includes them.

- :mod:`.jobs`: the fine-tuning API (``/api/v1/finetune/*``, ``/api/v1/model/prune``), included
  only when the API is on; its ``status`` router always is.
- :mod:`.logs`: job logs, as JSON chunks and as plain text (the jobs' ``log_url``); part of the
  fine-tuning API.
- :mod:`.inference`: ``/api/v1/infer`` and the served models (``/api/v1/models``, ``.../reload``).
- :mod:`.models`: the registry: a model's versions, promotion (with its audit log).
- :mod:`.video`: ``/api/v1/infer/video``, a video upload answered with a JSON line per frame.
- :mod:`.stream`: the ``/api/v1/stream`` WebSocket, live frames in and keypoints out.
"""
