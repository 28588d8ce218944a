"""The Chat Completions app the LangGraph server mounts (``langgraph.json``: ``http.app``).

``langgraph dev`` (and LangGraph Platform) serve ``/v1/chat/completions`` and ``/v1/models``
from here beside the Assistants API and Studio. Backends come from the ``TPO_*`` environment
(the embedded CPU default when none is set) and are loaded on the first request;
``TPO_SERVER_API_KEY``, ``TPO_SERVER_MAX_CONCURRENCY``, ``TPO_SERVER_MAX_QUEUE`` and
``TPO_SERVER_QUEUE_TIMEOUT`` apply as for ``tpo serve``.
"""

from langgraph_tpo.serve.app import create_app

app = create_app()
