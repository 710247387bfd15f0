"""Tell a person's click on a tracked link from a link-preview fetch or a crawler, by User-Agent.

A click counts only when a browser made it. The rules, in order — the first that applies decides:

1. No User-Agent, or a blank one → preview/bot. Every browser sends one; scripts may not.
2. The UA names an automated client (case-insensitive, ``_AUTOMATED``): search and SEO crawlers
   (Googlebot, bingbot, Baiduspider, YandexBot, Bytespider, 360Spider, …), chat-app link expanders
   (Slackbot, facebookexternalhit, Twitterbot, LinkedInBot, WhatsApp, SkypeUriPreview,
   iMessageLinkPreviews, DingTalkBot-LinkService, WeChatShareExtension — WeChat's iOS share
   extension that fetches a link's title and thumbnail), HTTP libraries and tools (curl, Wget,
   python-requests, python-urllib, httpx, aiohttp, Go-http-client, okhttp, Java/, Apache-HttpClient,
   node-fetch, axios, PostmanRuntime, HTTPie, Scrapy) and headless browsers (HeadlessChrome,
   PhantomJS, Lighthouse).
3. The UA has a word ending in ``bot``/``Bot`` (Googlebot/2.1, AhrefsBot, Slackbot-LinkExpanding, …).
   Matched case-sensitively and not after "Cu", so phones such as "CUBOT X19" / "Cubot Note" stay clicks.
4. The UA is not a browser's: it must start with ``Mozilla/`` (or ``Opera/``) and carry a rendering
   engine token (``AppleWebKit/``, ``Gecko/``, ``Trident/``, ``Presto/``, ``MSIE``). WeCom and WeChat
   fetch link cards with their native HTTP stack, whose UA has no engine (e.g.
   ``WeChat/8.0.47.33 CFNetwork/1410.0.3 Darwin/22.6.0``, ``wxwork/4.1.22 CFNetwork/…``), so those
   previews fall here.

Everything else is a click — notably the in-app browsers of WeCom and WeChat, which are full WebKit
/ Chromium browsers whose UA *ends* with ``wxwork/4.1.22 MicroMessenger/7.0.1 …`` or
``MicroMessenger/8.0.47 … WeChat/arm64 Weixin …``: a customer opening the link in WeCom is a click.
"""

from __future__ import annotations

import re

_AUTOMATED = (
    # crawlers
    "spider", "crawl", "slurp", "ia_archiver", "mediapartners-google", "google-inspectiontool",
    "googleother", "feedfetcher", "ahrefs", "semrush",
    # link expanders / previews
    "facebookexternalhit", "facebookcatalog", "facebot", "meta-externalagent", "meta-externalfetcher",
    "whatsapp", "skypeuripreview", "imessagelinkpreviews", "bingpreview", "embedly", "iframely",
    "linkservice", "wechatshareextension", "url preview",
    # HTTP libraries and tools
    "curl/", "wget/", "python-requests", "python-urllib", "python-httpx", "httpx/", "aiohttp",
    "go-http-client", "okhttp", "java/", "apache-httpclient", "libwww-perl", "node-fetch", "axios/",
    "undici", "postmanruntime", "insomnia/", "httpie/", "scrapy",
    # headless browsers
    "headlesschrome", "phantomjs", "lighthouse",
)
_BOT_WORD = re.compile(r"(?<![Cc][Uu])[Bb]ot\b")
_BROWSER_PREFIX = ("Mozilla/", "Opera/")
_ENGINES = ("AppleWebKit/", "Gecko/", "Trident/", "Presto/", "MSIE ")


def is_preview_or_bot(user_agent: str | None) -> bool:
    """True when the request that carried ``user_agent`` is a preview fetch or a bot, not a click."""
    ua = (user_agent or "").strip()
    if not ua:
        return True
    lowered = ua.lower()
    if any(token in lowered for token in _AUTOMATED):
        return True
    if _BOT_WORD.search(ua):
        return True
    return not (ua.startswith(_BROWSER_PREFIX) and any(engine in ua for engine in _ENGINES))
