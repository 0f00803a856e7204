"""Demo knowledge base: a few reviewed articles in both languages and the standard canned replies.

Written through the services, as an editor and a reviewer would, so the demo shows the real
workflow (versions, live copies, search index). Existing articles and replies are left alone.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from tickets.models import Category

from . import services
from .models import Article, Audience, CannedReply, KbCategory

GREETING = "您好,很高兴为您服务,请问有什么可以帮您?"
CLOSING = "感谢您的耐心等待,请问还有其他可以帮您的吗?祝您生活愉快!"

CANNED = [
    # title, shortcut, language, body
    ("标准问候语", "greeting", "zh-hans", GREETING),
    ("标准结束语", "closing", "zh-hans", CLOSING),
    ("称呼客户问候", "hello", "zh-hans", "{customer_name}您好,我是客服{agent_name},很高兴为您服务。"),
    ("稍后回复", "later", "zh-hans", "您的问题(工单 {ticket_ref})我们正在处理,预计 {expected_reply_time} 前给您答复,请耐心等待。"),
    ("Greeting", "greeting-en", "en", "Hello, thank you for contacting us. How can I help you today?"),
    ("Closing", "closing-en", "en", "Thank you for your patience. Is there anything else I can help you with?"),
]

CATEGORIES = [
    # slug, name, parent slug
    ("orders", "订单与售后", None),
    ("returns", "退换货", "orders"),
    ("devices", "设备使用", None),
    ("connection", "连接与配对", "devices"),
    ("account", "账户", None),
]

ARTICLES = [
    # slug, title, category, audience, language, ticket category codes, tags, body
    ("return-process", "退货流程", "returns", Audience.PUBLIC, "zh-hans", ["returns"], ["退货", "售后"],
     "签收后 7 天内可无理由退货。\n\n1. 在「我的订单」中选择商品,点击**申请退货**;\n2. 选择退货原因并上传照片;\n"
     "3. 审核通过后按页面上的地址寄回,保留快递单号;\n4. 仓库签收后 1-3 个工作日内退款到原支付账户。"),
    ("refund-time", "退款多久到账", "returns", Audience.PUBLIC, "zh-hans", ["refund"], ["退款"],
     "退款在仓库签收退货后发起:支付宝、微信支付 1-3 个工作日到账,银行卡 3-7 个工作日。超过时间未到账请提供订单号联系客服。"),
    ("band-pairing-failed", "手环连接失败怎么办", "connection", Audience.PUBLIC, "zh-hans",
     ["product_features"], ["手环", "蓝牙"],
     "请按以下步骤排查:\n\n- 确认手机蓝牙已打开,且手环电量高于 20%;\n- 在手机系统设置中**忽略**旧的配对记录;\n"
     "- 长按手环侧键 10 秒重启;\n- 打开 App,在「设备」中重新添加。\n\n仍然失败请记录手机型号和系统版本后联系客服。"),
    ("invoice", "如何开具发票", "orders", Audience.PUBLIC, "zh-hans", ["billing"], ["发票"],
     "订单完成后,在「我的订单 › 订单详情」点击**申请开票**,填写抬头和税号。电子发票 24 小时内发送到您的邮箱。"),
    ("refund-policy", "Refund policy", "returns", Audience.PUBLIC, "en", ["refund", "returns"], ["refund"],
     "You can return most items within **7 days** of delivery, no reason needed. Refunds go back to the original "
     "payment method within 1-3 business days (cards: up to 7) after the warehouse receives the item."),
    ("change-shipping-address", "How to change the shipping address", "orders", Audience.PUBLIC, "en", ["delivery"],
     ["shipping"], "Before the order ships, open **My orders › Order details › Change address**. Once it has shipped, "
     "contact us with the order number and we will ask the carrier to redirect it."),
    ("vip-compensation", "VIP 客户补偿标准(内部)", "orders", Audience.INTERNAL, "zh-hans", ["complaint_service"], ["VIP"],
     "VIP 客户因物流延误投诉时,可发放 20 元无门槛券;重复延误由组长审批,最高 50 元。发放后在工单内部备注中记录券号。"),
]


@transaction.atomic
def ensure_knowledge() -> tuple[int, int]:
    """Categories, articles (published by a second person) and canned replies; returns how many
    articles and replies were added."""
    User = get_user_model()
    author = User.objects.filter(username="lead").first()
    reviewer = User.objects.filter(username="trainer").first()
    if author is None or reviewer is None:
        return 0, 0
    categories: dict[str, KbCategory] = {}
    for slug, name, parent in CATEGORIES:
        categories[slug], _ = KbCategory.objects.get_or_create(
            slug=slug, defaults={"name": name, "parent": categories.get(parent) if parent else None},
        )
    added_articles = 0
    for slug, title, category, audience, language, codes, tags, body in ARTICLES:
        if Article.objects.filter(slug=slug).exists():
            continue
        article = services.create_article(
            actor=author, title=title, body=body, slug=slug, category=categories[category], audience=audience,
            language=language, tags=tags, ticket_categories=list(Category.objects.filter(code__in=codes)),
        )
        services.submit_for_review(article=article, actor=author)
        services.publish(article=article, reviewer=reviewer)
        added_articles += 1
    added_replies = 0
    for position, (title, shortcut, language, body) in enumerate(CANNED):
        _, created = CannedReply.objects.get_or_create(
            shortcut=shortcut, team=None, defaults={"title": title, "body": body, "language": language, "position": position},
        )
        added_replies += created
    return added_articles, added_replies
