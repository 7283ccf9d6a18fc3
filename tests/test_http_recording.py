"""Issue 13: the HTTP responses of a recorded run survive the recording's JSON (models.HttpResponse)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nbharden.record.models import HttpResponse

_text = st.text(max_size=30)
responses = st.builds(
    HttpResponse,
    cell=st.none() | st.integers(min_value=0, max_value=500),
    library=st.sampled_from(["requests", "httpx", "urllib"]),
    method=st.sampled_from(["GET", "POST", "HEAD"]),
    url=st.none() | _text.map(lambda t: "http://127.0.0.1:8000/" + t),
    status=st.integers(min_value=100, max_value=599),
    headers=st.lists(st.tuples(_text, _text), max_size=4).map(tuple),
    file=st.none() | _text.map(lambda t: f"values/{t}.http.b64"),
    sha256=st.none() | st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    note=_text,
)


@given(responses)
def test_a_response_survives_its_json(response: HttpResponse) -> None:
    assert HttpResponse.from_json(response.to_json()) == response


def test_an_event_without_a_kept_body_reads_as_not_kept() -> None:
    event = {
        "event": "http",
        "cell": 3,
        "library": "requests",
        "method": "GET",
        "status": 200,
        "note": "holds a secret: not recorded",
    }
    response = HttpResponse.from_json(event)  # type: ignore[arg-type]
    assert response.url is None and response.file is None and response.note
