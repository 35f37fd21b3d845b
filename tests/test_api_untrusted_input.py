"""Untrusted input to the API is a 4xx that says what is wrong, never a 500.

The classes a fuzzer found (tests/test_api_fuzz.py runs it), each by more than its first
instance: text that is not valid Unicode (JSON's lone ``\\ud800``) in a URL, an option or a job
row; malformed URLs (control characters, hosts that are not names); an uploaded file's name
(it only selects the format, it is never a path); a URL file that cannot be read as records;
a form that cannot be decoded; JSON nested deeper than the parser goes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from engines import create_engine
from screenshots.api import create_app
from screenshots.api.backends.pool import PoolBackend
from screenshots.api.config import load_api_config
from screenshots.core.settings import load_settings
from screenshots.storage.memory import MemoryStorage

KEY = "alice-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = load_settings({})
    backend = PoolBackend(
        lambda: create_engine("stub", settings), "stub", MemoryStorage(),
        tabs=2, wait_queue=4, uploads=2,
    )
    config = load_api_config({"SCREENSHOT_API_KEYS": f"alice:{KEY}"})
    with TestClient(create_app(config, backend, settings, job_poll_interval=0.02)) as test:
        yield test


def post_json(client: TestClient, path: str, text: str) -> tuple[int, str]:
    """POST ``text`` as it is (escapes such as ``\\ud800`` stay for the server to decode)."""
    answer = client.post(
        path, content=text.encode("utf-8"),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    return answer.status_code, answer.json()["detail"] if answer.status_code >= 400 else ""


def finished_job(client: TestClient, job_id: str) -> list[dict[str, object]]:
    """The rows of a job once it is done (``follow`` streams until then)."""
    answer = client.get(f"/v1/jobs/{job_id}/results.jsonl?follow=true", headers=AUTH)
    return [json.loads(line) for line in answer.text.splitlines()]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('{"url": "https://a.example/\\ud800", "wait": 2}', "lone surrogate"),
        ('{"url": "https://a.example/", "user_agent": "x\\udfff"}', "lone surrogate"),
        ('{"url": "https://a.example/", "headers": {"X-A\\ud800": "1"}}', "lone surrogate"),
        ('{"url": "https://a.example/\\u0001"}', "control characters"),
        ('{"url": "http://%00/"}', "not a valid domain name"),
        ('{"url": "http://[v1.x]/"}', "not an IPv6 address"),
        ('{"url": "http://a.example:99999999999999999999/"}', "Port out of range"),
        ('{"url": "https://a.example/", "fail_on_status": {}}', "not an object"),
        ('{"url": "https://a.example/", "width": 1e999}', "width must be a whole number"),
        ('{"url": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply"),
    ],
)
def test_a_bad_screenshot_request_is_a_422_saying_why(
    client: TestClient, body: str, words: str
) -> None:
    status, detail = post_json(client, "/v1/screenshots", body)
    assert (status, words in detail) == (422, True), detail


def test_bad_rows_of_a_json_job_are_error_rows(client: TestClient) -> None:
    status, detail = post_json(client, "/v1/jobs", '{"urls": ["https://a.example/\\ud800"]}')
    assert (status, "lone surrogate" in detail) == (422, True), detail
    answer = client.post("/v1/jobs", json={"urls": [
        "https://a.example/\u0001", {"url": "https://b.example/", "block": {}}, {"": None},
        "https://c.example/",
    ]}, headers=AUTH)
    assert answer.status_code == 202, answer.text
    rows = {row["line"]: row for row in finished_job(client, answer.json()["id"])}
    assert "control characters" in str(rows[1]["error"])
    assert "block must be" in str(rows[2]["error"])
    assert "each item must be a URL" in str(rows[3]["error"])
    assert rows[4]["status"] == "ok"


@pytest.mark.parametrize(
    "filename", ["urls.\x00", "urls.txt\x00.csv", "../../etc/urls.txt", "urls.\u00ff", "", "."]
)
def test_an_uploaded_files_name_is_never_a_path(client: TestClient, filename: str) -> None:
    answer = client.post(
        "/v1/jobs", files={"file": (filename, b"https://a.example/\n", "text/plain")},
        headers=AUTH,
    )
    assert answer.status_code in (202, 422), answer.text
    if answer.status_code == 202:
        rows = finished_job(client, answer.json()["id"])
        assert [row["status"] for row in rows] == ["ok"]


def test_an_upload_that_cannot_be_read_is_a_422_saying_why(client: TestClient) -> None:
    # bare CR line ends: the csv module cannot read the file (the dispatcher's exit 2)
    answer = client.post(
        "/v1/jobs",
        files={"file": ("urls.csv", b"url,width\rhttps://a.example/,100\r", "text/csv")},
        headers=AUTH,
    )
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("file: line 1: not readable as CSV")


def test_an_upload_with_bad_records_is_a_job_of_error_rows(client: TestClient) -> None:
    text = (
        b'{"url": "https://a.example/\\ud800"}\n'
        b'{"url": "https://b.example/", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}\n"
        b"\xff\xfe not text\n"
    )
    answer = client.post(
        "/v1/jobs", files={"file": ("urls.jsonl", text, "application/x-ndjson")}, headers=AUTH
    )
    assert answer.status_code == 202, answer.text
    rows = {row["line"]: row for row in finished_job(client, answer.json()["id"])}
    assert "lone surrogate" in str(rows[1]["error"]) and "\\ud800" in str(rows[1]["url"])
    assert rows[2]["error"] == "line is nested too deeply"
    assert rows[3]["error"] == "line is not valid UTF-8"


def test_a_form_that_cannot_be_decoded_is_a_422(client: TestClient) -> None:
    fields = {f"field{i}": "x" for i in range(12)}  # more than the form takes
    answer = client.post(
        "/v1/jobs", files={"file": ("urls.txt", b"https://a.example/\n", "text/plain")},
        data=fields, headers=AUTH,
    )
    assert answer.status_code == 422
    assert "the form cannot be read" in answer.json()["detail"]
    broken = client.post(
        "/v1/jobs", content=b"--x\r\nno headers",
        headers={**AUTH, "Content-Type": "multipart/form-data; boundary=x"},
    )
    assert broken.status_code == 422, broken.text


def test_form_options_that_are_not_text_are_a_422(client: TestClient) -> None:
    answer = client.post(
        "/v1/jobs", files={"file": ("urls.txt", b"https://a.example/\n", "text/plain")},
        data={"options": '{"user_agent": "\\ud800"}'}, headers=AUTH,
    )
    assert answer.status_code == 422
    assert "lone surrogate" in answer.json()["detail"]
