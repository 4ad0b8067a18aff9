"""{{name}}: a mecha responder plugin. It writes a worker's allowed result back to an API.

The result's comment (or, without one, its output) is posted as {"body": "..."} to
<api_url>/comments, where `api_url` is the plugin's setting (responders.{{name}}.api_url in the
daemon's config.yml). The host lets the plugin reach that origin only and adds the credential
itself: the plugin never holds a token and must not set authorization headers.

The bindings (`wit_world`) are generated from wit/ by componentize-py when it builds the
component; `componentize-py -d wit -w responder bindings bindings/` writes them out to read.
"""

import json
from dataclasses import dataclass
from typing import Optional, Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.responder_api import ActionReceipt, Receipt, RespondError
from wit_world.imports import config, log, outgoing_handler, streams
from wit_world.imports import wasi_http_types as http
from wit_world.imports.mecha_plugin_types import PluginInfo, StoredEvent, TaskResult

# The setting holding the API's base URL, e.g. https://api.example.com/v1.
API_URL = "api_url"


class ResponderApi(exports.ResponderApi):
    def describe(self) -> PluginInfo:
        return PluginInfo(
            name="{{name}}",
            version="0.1.0",
            summary="Posts a worker's comment to <api_url>/comments",
            secrets=[],
            settings=[API_URL],
            # The API's default origin, used when the operator sets no api_url, e.g.
            # "https://api.example.com". Empty: the operator must set one.
            hosts=[],
        )

    def respond(self, event: StoredEvent, allowed: TaskResult, marker: str) -> Receipt:
        api_url = (config.get(API_URL) or "").strip()
        if not api_url:
            raise failed("no api_url: set responders.{{name}}.api_url in config.yml", False)
        post = comment_post(api_url, allowed, marker)
        if post is None:
            # Nothing to write back.
            return Receipt(actions=[])
        status, reply = post_json(post.url, post.body)
        log.emit(
            log.Level.INFO,
            "comment posted",
            [log.Field("url", post.url), log.Field("status", str(status))],
        )
        return receipt(post.url, status, reply)


@dataclass
class Post:
    """One request to send."""

    url: str
    # JSON, {"body": "..."}.
    body: bytes


def failed(message: str, retryable: bool) -> Err:
    """The error respond raises; `retryable` says whether the same call may succeed later."""
    return Err(RespondError(message=message, retryable=retryable))


def comment_post(api_url: str, allowed: TaskResult, marker: str) -> Optional[Post]:
    """The comment to post for `allowed`: its comment, else its output, ending with a line that
    carries `marker`; None when there is neither.

    The marker lets a responder recognise its own comment: one that must never post twice after
    a retry first lists the existing comments and skips the post when one carries the marker.
    """
    text = allowed.comment.body if allowed.comment is not None else allowed.output
    if text is None or not text.strip():
        return None
    # "--" would end the HTML comment early.
    marker = marker.replace("--", "-")
    body = f"{text.rstrip()}\n\n<!-- mecha:{marker} -->"
    return Post(
        url=api_url.strip().rstrip("/") + "/comments",
        body=json.dumps({"body": body}).encode(),
    )


def receipt(url: str, status: int, reply: bytes) -> Receipt:
    """What the API's answer means: a receipt for a 2xx (referring to the comment's URL when
    the reply names one), otherwise an error that is retryable for 429 and 5xx."""
    if not 200 <= status < 300:
        text = reply.decode("utf-8", "replace")[:200]
        raise failed(f"POST {url} answered {status}: {text}", status == 429 or status >= 500)
    try:
        answer = json.loads(reply)
    except ValueError:
        answer = None
    reference = url
    if isinstance(answer, dict):
        for key in ("html_url", "web_url", "url"):
            if isinstance(answer.get(key), str):
                reference = answer[key]
                break
    return Receipt(actions=[ActionReceipt(action="comment", reference=reference)])


def split_url(url: str) -> Optional[Tuple[http.Scheme, str, str]]:
    """Splits scheme://authority/path?query into the scheme, the authority and the path with
    its query, which starts with /."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    schemes = {"https": http.Scheme_Https(), "http": http.Scheme_Http()}
    if scheme.lower() not in schemes:
        return None
    end = min([i for i in (rest.find("/"), rest.find("?")) if i >= 0], default=len(rest))
    authority, path = rest[:end], rest[end:]
    if not authority:
        return None
    return schemes[scheme.lower()], authority, path if path.startswith("/") else "/" + path


def http_error(code: http.ErrorCode) -> Err:
    """A request that got no answer: retryable unless the host refused it or it is malformed."""
    if isinstance(code, http.ErrorCode_HttpRequestDenied):
        return failed(
            "the host denied the request: is api_url's origin granted to this plugin?", False
        )
    if isinstance(
        code,
        (
            http.ErrorCode_HttpRequestUriInvalid,
            http.ErrorCode_HttpRequestMethodInvalid,
            http.ErrorCode_ConfigurationError,
        ),
    ):
        return failed(f"invalid request: {code}", False)
    return failed(f"the request failed: {code}", True)


def post_json(url: str, body: bytes) -> Tuple[int, bytes]:
    """POSTs the JSON `body` to `url` with the host's outgoing HTTP, and returns the status and
    the reply's body. Blocks until the reply is read."""
    parts = split_url(url)
    if parts is None:
        raise failed(f"not an http(s) URL: {url}", False)
    scheme, authority, path = parts
    headers = http.Fields.from_list(
        [("content-type", b"application/json"), ("content-length", str(len(body)).encode())]
    )
    request = http.OutgoingRequest(headers)
    try:
        request.set_method(http.Method_Post())
        request.set_scheme(scheme)
        request.set_authority(authority)
        request.set_path_with_query(path)
        outgoing = request.body()
    except Err:
        raise failed("the host refused the request", False)

    try:
        future = outgoing_handler.handle(request, None)
    except Err as err:
        raise http_error(err.value)
    # The stream must be dropped (`with`) before its body is finished.
    with outgoing.write() as stream:
        # blocking_write_and_flush takes at most 4096 bytes at a time.
        for start in range(0, len(body), 4096):
            try:
                stream.blocking_write_and_flush(body[start : start + 4096])
            except Err as err:
                raise failed(f"writing the request failed: {err.value}", True)
    try:
        http.OutgoingBody.finish(outgoing, None)
    except Err as err:
        raise http_error(err.value)

    with future:
        with future.subscribe() as pollable:
            pollable.block()
        answer = future.get()
    if answer is None or isinstance(answer, Err):
        raise failed("no response arrived", True)
    if isinstance(answer.value, Err):
        raise http_error(answer.value.value)
    with answer.value.value as response:
        status = response.status()
        incoming = response.consume()
        reply = bytearray()
        with incoming.stream() as stream:
            while True:
                try:
                    reply += stream.blocking_read(64 * 1024)
                except Err as err:
                    if isinstance(err.value, streams.StreamError_Closed):
                        break
                    raise failed(f"reading the response failed: {err.value}", True)
        # Finishing the body gives its trailers, which are not needed.
        with http.IncomingBody.finish(incoming):
            pass
    return status, bytes(reply)
