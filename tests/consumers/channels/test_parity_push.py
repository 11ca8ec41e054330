"""Push, e-mail and generic services read shoutrrr's own URLs as shoutrrr does.

Every case names the file of nicholas-fedor/shoutrrr its URL comes from.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from consumers.channels.smtp import SmtpChannel
from eventbus.errors import ChannelConfigError

from .parity import Case, case, check, first_request, made

SMTP = "pkg/services/email/smtp/smtp_test.go"
NTFY_CONFIG = "pkg/services/push/ntfy/ntfy_config_test.go"
NTFY = "pkg/services/push/ntfy/ntfy_test.go"
GOTIFY = "pkg/services/push/gotify/gotify_test.go"
PUSHOVER = "pkg/services/push/pushover/pushover_test.go"
GENERIC = "pkg/services/specialized/generic/generic_test.go"
GENERIC_DOCS = "docs/services/specialized/generic/index.md"
HEX_KEY = "0123456789abcdef" * 4
PUSHOVER_API = "https://api.pushover.net/1/messages.json"

ACCEPTED = [
    # -- ntfy
    case("ntfy://ntfy.example.com/mytopic", NTFY, "https://ntfy.example.com/mytopic", id="ntfy"),
    case(
        "ntfy://user:pass@ntfy.example.com/mytopic?priority=5",
        NTFY,
        "https://ntfy.example.com/mytopic",
        headers={"Authorization": "Basic dXNlcjpwYXNz", "Priority": "5"},
        id="ntfy-basic-auth",
    ),
    case(
        "ntfy://:devicekey@hostname/testtopic",
        NTFY,
        "https://hostname/testtopic",
        headers={"Authorization": "Bearer devicekey"},
        id="ntfy-token",
    ),
    case(
        "ntfy://ntfy.example.com/mytopic?title=Alert&priority=High&tags=warning,skull",
        NTFY_CONFIG,
        "https://ntfy.example.com/mytopic",
        headers={"Priority": "4", "Tags": "warning,skull"},
        id="ntfy-title-priority-tags",
    ),
    case(
        "ntfy://ntfy.example.com/mytopic?actions=view;open",
        NTFY_CONFIG,
        "https://ntfy.example.com/mytopic",
        headers={"Actions": "view;open"},
        id="ntfy-actions",
    ),
    case(
        "ntfy://ntfy.example.com/mytopic?cache=no&markdown=yes",
        NTFY_CONFIG,
        "https://ntfy.example.com/mytopic",
        headers={"Cache": "no", "Markdown": "yes"},
        id="ntfy-cache-markdown",
    ),
    case(
        "ntfy://ntfy.example.com/mytopic?disabletls=yes",
        NTFY,
        "http://ntfy.example.com/mytopic",
        id="ntfy-disabletls",
    ),
    case(
        "ntfy://user:pass@example.com:2225/topic?cache=No&click=CLICK&disabletls=No"
        "&disabletlsverification=No&firebase=No&icon=ICON&markdown=No&priority=Max"
        "&scheme=http&title=TITLE",
        NTFY_CONFIG,
        "http://example.com:2225/topic",
        headers={"Click": "CLICK", "Icon": "ICON", "Firebase": "no", "Priority": "5"},
        id="ntfy-every-key",
    ),
    case(
        "ntfy://example.com/test?disabletlsverification=yes",
        NTFY,
        "https://example.com/test",
        warns=("'disabletlsverification'",),
        id="ntfy-tls-verification-warns",
    ),
    case(
        "ntfy://ntfy.example.com/level1/level2/level3",
        NTFY_CONFIG,
        "https://ntfy.example.com/level1/level2/level3",
        id="ntfy-nested-topic",
    ),
    case(
        "ntfy://ntfy.example.com/t?in=30m&attach=https://example.com/image.png&filename=i.png",
        "pkg/services/push/ntfy/ntfy_config.go",  # key:"delay,at,in"
        "https://ntfy.example.com/t",
        headers={"Delay": "30m", "Attach": "https://example.com/image.png", "Filename": "i.png"},
        id="ntfy-in-alias-attach",
    ),
    # -- gotify: the token goes in X-Gotify-Key
    case(
        "gotify://my.gotify.tld/Aaa.bbb.ccc.ddd",
        GOTIFY,
        "https://my.gotify.tld/message",
        headers={"X-Gotify-Key": "Aaa.bbb.ccc.ddd"},
        id="gotify",
    ),
    case(
        "gotify://my.gotify.tld/gotify/Aaa.bbb.ccc.ddd?title=Test+title",
        GOTIFY,
        "https://my.gotify.tld/gotify/message",
        id="gotify-subpath",
    ),
    case(
        "gotify://my.gotify.tld/path/to/gotify/Aaa.bbb.ccc.ddd/",
        GOTIFY,
        "https://my.gotify.tld/path/to/gotify/message",
        id="gotify-trailing-slash",
    ),
    case(
        "gotify://my.gotify.tld/Aaa.bbb.ccc.ddd?disabletls=Yes&priority=1&title=Test+title",
        GOTIFY,
        "http://my.gotify.tld/message",
        json={"priority": 1},
        id="gotify-disabletls-priority",
    ),
    case(
        "gotify://my.gotify.tld/Aaa.bbb.ccc.ddd?extras="
        + quote('{"key1":"value1","key2":42}', safe="")
        + "&useheader=yes&priority=-2&date=2024-01-02T15:04:05Z",
        GOTIFY,
        "https://my.gotify.tld/message",
        json={"priority": -2, "date": "2024-01-02T15:04:05Z"},
        id="gotify-extras-date",
    ),
    case(
        "gotify://my.gotify.tld/gtfya.Y-Hy2VGVj6pYb64Wx6xFYHPBwBdbRWQy_XLiH5qMJeU",
        GOTIFY,  # the newer token form
        "https://my.gotify.tld/message",
        id="gotify-enhanced-token",
    ),
    case(
        "gotify://gotify.example.com:443/path/to/gotify/message?token=AzyoeNS.D4iJLVa"
        "&title=Great+News&priority=1",
        "docs/services/push/gotify/index.md",  # the docs' API-URL form
        "https://gotify.example.com:443/path/to/gotify/message",
        headers={"X-Gotify-Key": "AzyoeNS.D4iJLVa"},
        json={"priority": 1},
        id="gotify-docs-token-query",
    ),
    case(
        "gotify://gotify.example.com/message?token=AzyoeNS.D4iJLVa&date=2023-12-25%2010:00:00",
        "docs/services/push/gotify/index.md",  # "Basic date-time format", read as UTC
        "https://gotify.example.com/message",
        json={"date": "2023-12-25T10:00:00Z"},
        id="gotify-docs-basic-date",
    ),
    case(
        "gotify://gotify.example.com/message?token=AzyoeNS.D4iJLVa&date=1703498400",
        "docs/services/push/gotify/index.md",  # "Unix timestamp"
        "https://gotify.example.com/message",
        json={"date": "2023-12-25T10:00:00Z"},
        id="gotify-docs-unix-date",
    ),
    # -- pushover: pushover://shoutrrr:TOKEN@USER
    case(
        "pushover://:apptoken@usertoken?title=Plain+Title",
        PUSHOVER,
        PUSHOVER_API,
        form={"token": "apptoken", "user": "usertoken"},
        id="pushover",
    ),
    case(
        f"pushover://:apptoken@usertoken?encryptionkey={HEX_KEY}",
        PUSHOVER,
        PUSHOVER_API,
        warns=("'encryptionkey'",),
        id="pushover-encryption-warns",
    ),
    case(
        "pushover://:apptoken@usertoken?encryptionkey=",
        PUSHOVER,
        PUSHOVER_API,
        id="pushover-empty-key",
    ),
    # -- generic
    case("generic://example.com", GENERIC, "https://example.com/", id="generic"),
    case("generic://example.com?disabletls=yes", GENERIC, "http://example.com/", id="generic-http"),
    case("generic+https://test.tld", GENERIC, "https://test.tld/", id="generic-plus"),
    case(
        "generic://example.com/path?foo=bar",
        GENERIC,
        "https://example.com/path?foo=bar",
        id="generic-forwards-query",
    ),
    case(
        "generic://example.com/?__template=passed",
        GENERIC,  # the escaped reserved key is forwarded
        "https://example.com/?template=passed",
        id="generic-escaped-key",
    ),
    case(
        "generic://host.tld/webhook?@authorization=frend&method=GET",
        GENERIC,
        "https://host.tld/webhook",
        method="GET",
        headers={"Authorization": "frend"},
        id="generic-header-method",
    ),
    case(
        "generic://example.com?@acceptLanguage=tlh-Piqd",
        GENERIC_DOCS,  # header names are normalised
        "https://example.com/",
        headers={"Accept-Language": "tlh-Piqd"},
        id="generic-header-name",
    ),
    case(
        "generic://host.tld/webhook?template=JSON&messagekey=body&titlekey=header",
        GENERIC,
        "https://host.tld/webhook",
        json={"header": "capsule.create failed: capsule c1 (team-1)"},
        id="generic-json-keys",
    ),
    case(
        "generic://example.com?$projection=retroazimuthal",
        GENERIC_DOCS,  # without template=json shoutrrr drops the field: eventbus warns
        "https://example.com/",
        warns=("'$projection'",),
        id="generic-field-without-json-warns",
    ),
    case(
        "generic://host.tld/webhook?template=json&$context=inside+joke",
        GENERIC,
        "https://host.tld/webhook",
        json={"context": "inside joke"},
        id="generic-extra-field",
    ),
]


@pytest.mark.parametrize("item", ACCEPTED)
def test_shoutrrr_url_makes_the_same_request(item: Case) -> None:
    check(item)


def test_smtp_every_key() -> None:
    # pkg/services/email/smtp/smtp_test.go: the URL with every query key
    url = (
        "smtp://user:password@example.com:2225/?auth=None&clienthost=testhost"
        "&encryption=ExplicitTLS&fromaddress=sender%40example.com&fromname=Sender"
        "&subject=Subject&toaddresses=rec1%40example.com%2Crec2%40example.com&usehtml=Yes"
        "&usestarttls=No&timeout=10s"
    )
    channel = made(url)
    assert isinstance(channel, SmtpChannel)
    request = first_request(channel)
    assert (request.method, str(request.url)) == ("SMTP", "smtp://example.com:2225")
    assert request.headers["From"] == "Sender <sender@example.com>"
    assert request.headers["To"] == "rec1@example.com, rec2@example.com"
    assert request.headers["Subject"].startswith("Subject")
    assert "RCPT TO rec1@example.com, rec2@example.com" in request.note
    assert channel._timeout == 10.0
    assert "AUTH" not in request.note  # auth=None


@pytest.mark.parametrize(
    ("url", "tls_verify", "encryption"),
    [
        pytest.param(
            "smtp://user:password@example.com:2225/?fromAddress=sender@example.com"
            "&toAddresses=rec1@example.com&skiptlsverify=yes",
            False,
            "auto",
            id="skiptlsverify",
        ),
        pytest.param(
            "smtp://example.com:2225/?useStartTLS=no&auth=none&fromAddress=sender@example.com"
            "&toAddresses=rec1@example.com&useHTML=no&timeout=10s",
            True,
            "none",
            id="no-starttls",
        ),
        pytest.param(
            "smtp://example.com/?from=a@example.com&to=b@example.com&title=T&requirestarttls=yes",
            True,
            "starttls",  # pkg/services/email/smtp/smtp_config.go: from, to, title aliases
            id="aliases-require-starttls",
        ),
    ],
)
def test_smtp_tls_keys(url: str, tls_verify: bool, encryption: str) -> None:
    # pkg/services/email/smtp/smtp_test.go
    channel = made(url)
    assert isinstance(channel, SmtpChannel)
    assert channel._tls_verify is tls_verify
    assert channel.encryption == encryption


REFUSED = [
    pytest.param(
        "smtp://user:password@example.com:2225/?fromAddress=sender@example.com",
        SMTP,
        "no recipient",
        id="smtp-no-to",
    ),
    pytest.param(
        "smtp://user:password@example.com:2225/?toAddresses=rec1@example.com,rec2@example.com",
        SMTP,
        "no sender",
        id="smtp-no-from",
    ),
    pytest.param(
        "smtp://example.com/?fromAddress=s@example.com&toAddresses=r@example.com&foo=bar",
        SMTP,
        "unknown",
        id="smtp-unknown-key",
    ),
    pytest.param(
        "smtp://example.com/?from=s@example.com&to=r@example.com&timeout=soon",
        SMTP,
        "not a duration",
        id="smtp-bad-timeout",
    ),
    pytest.param("ntfy://ntfy.example.com/", NTFY_CONFIG, "no topic", id="ntfy-no-topic"),
    pytest.param("ntfy://host/topic?foo=bar", NTFY, "unknown", id="ntfy-unknown-key"),
    pytest.param("gotify://my.gotify.tld/short", GOTIFY, "token", id="gotify-short"),
    pytest.param("gotify://my.gotify.tld/Chwbsdyhwwgarxd", GOTIFY, "token", id="gotify-not-A"),
    pytest.param("gotify://my.gotify.tld/Aaa!bbb.ccc.ddd", GOTIFY, "token", id="gotify-char"),
    pytest.param("gotify://my.gotify.tld/gtfya.123", GOTIFY, "token", id="gotify-short-new"),
    pytest.param("gotify://my.gotify.tld/", GOTIFY, "no application token", id="gotify-none"),
    pytest.param("gotify:///Aaa.bbb.ccc.ddd", GOTIFY, "no host", id="gotify-no-host"),
    pytest.param("gotify://[::1]:99999/Aaa.bbb.ccc.ddd", GOTIFY, "port", id="gotify-bad-port"),
    pytest.param(
        "gotify://my.gotify.tld/Aaa.bbb.ccc.ddd?extras=invalid-json",
        GOTIFY,
        "JSON object",
        id="gotify-bad-extras",
    ),
    pytest.param(
        "gotify://gotify.example.com/message?date=invalid-date&token=AzyoeNS.D4iJLVa",
        "docs/services/push/gotify/index.md",
        "not a date",
        id="gotify-bad-date",
    ),
    pytest.param(
        "gotify://example.com/message?token=AzyoeNS.D4iJLVa&priority=15",
        "docs/services/push/gotify/index.md",  # "Validation Failure Example"
        "-2 to 10",
        id="gotify-priority-15",
    ),
    pytest.param(
        "pushover://:apptoken@usertoken?encryptionkey=0123456789abcdef",
        PUSHOVER,
        "64 hexadecimal",
        id="pushover-short-key",
    ),
    pytest.param(
        "pushover://:apptoken@usertoken?encryptionkey=" + "z" * 64,
        PUSHOVER,
        "64 hexadecimal",
        id="pushover-non-hex-key",
    ),
    pytest.param(
        "generic://host.tld/webhook?template=arrows", GENERIC, "template", id="generic-template"
    ),
]


@pytest.mark.parametrize(("url", "source", "needle"), REFUSED)
def test_shoutrrr_refusals(url: str, source: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        made(url)
