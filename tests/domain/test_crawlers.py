"""Clicks versus link previews and crawlers, by User-Agent."""

from __future__ import annotations

import pytest

from domain.crawlers import is_preview_or_bot

PEOPLE = {
    "iPhone Safari": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5_1 like Mac OS X) AppleWebKit/605.1.15 "
                     "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Android Chrome": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                      "Chrome/126.0.6478.122 Mobile Safari/537.36",
    "WeCom in-app browser (iOS)": "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 "
                                  "(KHTML, like Gecko) Mobile/15E148 wxwork/4.1.22 MicroMessenger/7.0.1 "
                                  "Language/zh ColorScheme/Light",
    "WeCom in-app browser (Android)": "Mozilla/5.0 (Linux; Android 13; V2227A; wv) AppleWebKit/537.36 (KHTML, "
                                      "like Gecko) Version/4.0 Chrome/109.0.5414.86 MQQBrowser/6.2 TBS/047601 "
                                      "Mobile Safari/537.36 wxwork/4.1.22 MicroMessenger/7.0.1 NetType/WIFI "
                                      "Language/zh Lang/zh",
    "WeChat in-app browser": "Mozilla/5.0 (Linux; Android 12; M2102K1C Build/SKQ1.211006.001; wv) "
                             "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/107.0.5304.141 Mobile "
                             "Safari/537.36 XWEB/5043 MMWEBSDK/20221011 MMWEBID/7183 MicroMessenger/8.0.30.2260"
                             "(0x28001E3B) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64",
    "Windows WeChat": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                      "Chrome/122.0.0.0 Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) "
                      "WindowsWechat(0x63090a13) XWEB/11581 Flue",
    "Desktop Firefox": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "a CUBOT phone": "Mozilla/5.0 (Linux; Android 11; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) "
                     "Chrome/120.0.0.0 Mobile Safari/537.36",
}

MACHINES = {
    "no user agent": None,
    "blank": "  ",
    "WeCom native fetch (iOS)": "wxwork/4.1.22 CFNetwork/1410.0.3 Darwin/22.6.0",
    "WeChat native fetch (iOS)": "WeChat/8.0.47.33 CFNetwork/1410.0.3 Darwin/22.6.0",
    "WeChat share extension": "WeChatShareExtensionNew/8.0.47.33 CFNetwork/1410.0.3 Darwin/22.6.0",
    "MicroMessenger without a browser": "MicroMessenger Client",
    "Googlebot": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Googlebot smartphone": "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, "
                            "like Gecko) Chrome/126.0.6478.126 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
                            "+http://www.google.com/bot.html)",
    "bingbot": "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
               "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
    "Baiduspider": "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "Bytespider": "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 "
                  "(compatible; Bytespider; spider-feedback@bytedance.com)",
    "curl": "curl/8.5.0",
    "python-requests": "python-requests/2.32.3",
    "Slackbot": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "facebookexternalhit": "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Twitterbot": "Twitterbot/1.0",
    "WhatsApp": "WhatsApp/2.23.20.0 A",
    "DingTalk": "DingTalkBot-LinkService/1.0 (+https://open-doc.dingtalk.com/microapp/faquestions/ftpfeu)",
    "headless Chrome": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                       "HeadlessChrome/126.0.0.0 Safari/537.36",
    "Go": "Go-http-client/2.0",
    "okhttp": "okhttp/4.12.0",
}


@pytest.mark.parametrize("ua", PEOPLE.values(), ids=PEOPLE.keys())
def test_a_person_in_a_browser_counts_as_a_click(ua: str) -> None:
    assert not is_preview_or_bot(ua)


@pytest.mark.parametrize("ua", MACHINES.values(), ids=MACHINES.keys())
def test_previews_crawlers_and_scripts_do_not_count(ua: str | None) -> None:
    assert is_preview_or_bot(ua)
