"""Loopback pages in English and Chinese for the web search tests."""

from tests.websearch.conftest import article

PAGES = {
    "raft": article(
        "Raft leader election",
        [
            "Raft is a consensus algorithm for managing a replicated log across a cluster of servers.",
            "A follower that hears no heartbeat before its election timeout becomes a candidate and requests votes.",
            "A candidate that wins votes from a majority of servers becomes the leader for the term.",
        ],
        published="2024-03-05T08:00:00Z",
    ),
    "bees": article(
        "How honeybees share directions",
        [
            "A forager bee returning to the hive performs a waggle dance on the vertical comb.",
            "The angle of the waggle run from vertical tells the other bees the direction of the food "
            "relative to the sun, and its length tells them the distance.",
        ],
    ),
    "tides": article(
        "Why the sea has two tides a day",
        [
            "Tides are caused mainly by the gravitational pull of the Moon on the oceans.",
            "The Earth rotates through two bulges of water each day, one facing the Moon and one opposite it.",
        ],
    ),
    "sourdough": article(
        "Keeping a sourdough starter alive",
        [
            "Feed the starter every day with equal weights of flour and water and keep it at room temperature.",
            "Bake bread when the starter doubles in size a few hours after feeding.",
        ],
    ),
    "volcano": article(
        "How volcanoes erupt",
        [
            "Magma rises because it is less dense than the surrounding rock.",
            "Dissolved gases expand as the magma nears the surface and drive explosive eruptions.",
        ],
    ),
    "panda": article(
        "四川的大熊猫保护",
        [
            "大熊猫主要生活在四川、陕西和甘肃的山区竹林中，以竹子为主要食物。",
            "为了保护大熊猫，中国建立了卧龙等自然保护区，野生大熊猫的数量稳步增长。",
        ],
        lang="zh-CN",
    ),
    "tea": article(
        "普洱茶的发酵",
        [
            "普洱茶产自云南，分为生茶和熟茶两类。",
            "熟茶经过渥堆发酵，微生物在湿热环境中分解茶多酚，使茶汤变得红浓醇厚。",
        ],
        lang="zh-CN",
    ),
    "rail": article(
        "中国高速铁路",
        [
            "京沪高速铁路全长约一千三百公里，列车最高运营时速三百五十公里。",
            "高铁让北京到上海的旅行时间缩短到四个多小时。",
        ],
        lang="zh-CN",
    ),
    # the distractors "tofu" and "wall" share their topics with the answer prompt's worked example
    # (llm/web_answer.py) but not its words: an answer that copies the example is not taken for one from them
    "tofu": article(
        "豆腐是怎样做成的",
        [
            "做豆腐要先把黄豆泡一夜，加水磨碎，滤出豆浆后烧开。",
            "往热豆浆里点入盐卤或石膏，豆浆凝结成豆花，再装进布包压出水分，便成了豆腐。",
        ],
        lang="zh-CN",
    ),
    "wall": article(
        "长城的修建",
        ["今天看到的砖石长城主要是明代修筑的，从东边的山海关一直延伸到西边的嘉峪关。"],
        lang="zh-CN",
    ),
}
