from websearch.extract import decode, extract
from websearch.snippets import snippet

ARTICLE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Raft leader election</title>
<meta property="article:published_time" content="2024-03-05T08:00:00Z"></head><body>
<nav><a href="/">Home</a> <a href="/blog">Blog</a></nav>
<article><h1>Raft leader election</h1>
<p>Raft is a consensus algorithm designed to be easy to understand. Servers start as followers and
become candidates when they hear nothing from a leader before their election timeout expires.</p>
<p>A candidate votes for itself and asks the others for votes. It becomes leader when a majority of the
cluster grants its vote for the current term, and then sends heartbeats to keep its authority.</p>
<p>Randomised election timeouts make split votes rare, so a new leader is usually chosen quickly.</p>
</article><footer>(c) 2024 Example</footer></body></html>"""


def test_trafilatura_extracts_title_text_date_site_and_language():
    page = extract(ARTICLE.encode(), "text/html", "utf-8", "https://blog.example.com/raft")
    assert page.title == "Raft leader election"
    assert "majority of the" in page.content and "cluster grants" in page.content
    assert "Home" not in page.content and "(c) 2024" not in page.content
    assert page.published_at is not None and page.published_at.isoformat().startswith("2024-03-05")
    assert page.lang == "en"
    assert page.site
    assert page.html.startswith("<!doctype html>")


def test_chinese_page_is_detected_as_chinese():
    html = (
        "<html><head><title>熊猫保护</title></head><body><article><h1>四川的大熊猫保护</h1>"
        "<p>大熊猫是中国特有的珍稀动物，主要生活在四川、陕西和甘肃的山区竹林中。</p>"
        "<p>自然保护区的建立和竹林走廊的恢复，使野生大熊猫的数量在过去几十年里稳步增长。</p>"
        "</article></body></html>"
    )
    page = extract(html.encode("gb18030"), "text/html", None, "http://example.cn/panda")
    assert "大熊猫" in page.content
    assert page.lang == "zh"


def test_falls_back_to_plain_text_when_trafilatura_finds_nothing():
    html = (
        "<html><head><title>Tiny</title><script>var x=1;</script></head><body><div>Just one line.</div></body></html>"
    )
    page = extract(html.encode(), "text/html", "utf-8", "http://example.com/tiny")
    assert page.content == "Just one line."
    assert "var x" not in page.content


def test_plain_text_pages():
    page = extract(b"First line is the title\nThen the body.", "text/plain", None, "http://example.com/a.txt")
    assert page.title == "First line is the title"
    assert page.content.endswith("Then the body.")


def test_decode_sniffs_meta_charset_and_falls_back_to_gb18030():
    assert decode('<meta charset="gbk"><p>中文</p>'.encode("gbk"), None).endswith("中文</p>")
    assert decode("中文".encode("gb18030"), None) == "中文"


def test_snippet_is_cut_around_the_match():
    text = "A" * 300 + " the leader election happens here " + "B" * 300
    cut = snippet(text, ["election"], width=120)
    assert "election" in cut and cut.startswith("...") and cut.endswith("...")
    assert snippet("short text", ["nothing"]) == "short text"
