"""Teams: a Power Automate workflow URL and an Adaptive Card."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from consumers.channels.teams import TeamsChannel
from eventbus.errors import ChannelConfigError

from .support import Recorder, build, make_message, mock_client

WORKFLOW = (
    "https://prod-01.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke"
    "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=SIGsecret123"
)


def test_url_good() -> None:
    channel = build(httpx.AsyncClient(), f"teams://?host={quote(WORKFLOW, safe='')}&title=Prod")
    assert isinstance(channel, TeamsChannel)
    assert "SIGsecret123" not in channel.describe()


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param(f"teams://?host={WORKFLOW}", "not percent-encoded", id="unencoded-host"),
        pytest.param("teams://group@tenant/altid/owner", "retired", id="old-connector"),
        pytest.param("teams://?title=x", "no workflow URL", id="no-host"),
        pytest.param("teams://?host=http%3A%2F%2Fx", "https", id="not-https"),
    ],
)
def test_url_bad(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        build(httpx.AsyncClient(), url)


async def test_adaptive_card_request() -> None:
    recorder = Recorder(lambda request: httpx.Response(202))
    async with mock_client(recorder) as client:
        channel = build(client, None, type="teams", workflow_url=WORKFLOW)
        result = await channel.send(make_message(link="https://l.example"))
    assert result.ok
    assert recorder.last.method == "POST"
    assert recorder.last.url.host == "prod-01.westus.logic.azure.com"
    assert recorder.last.url.params["sig"] == "SIGsecret123"
    card = recorder.json()
    assert card["type"] == "message"
    attachment = card["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    content = attachment["content"]
    assert content["type"] == "AdaptiveCard"
    assert content["body"][0]["text"] == "capsule.create failed: capsule c1 (team-1)"
    assert content["body"][0]["color"] == "Attention"
    assert content["body"][1]["text"] == "Outcome: error\n\nError: quota exceeded"
    assert content["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open", "url": "https://l.example"}
    ]
