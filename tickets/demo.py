"""Realistic demo data: an organisation, its logins, customers and Chinese conversations.

Everything here tops up to a target instead of adding blindly, so seeding twice adds
nothing. Tickets are written in batches with bulk_create: 100,000 tickets with their
conversations take about a minute, not hours.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import Group, User
from django.db import transaction
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from helpdesk import roles
from helpdesk.models import Agent, Channel, Customer, Skill, Tag, Team

from . import sla
from .models import Category, Message, RoutingRule, SlaClock, Ticket

DEMO_PASSWORD_ENV = "HELPDESK_DEMO_PASSWORD"
DEFAULT_DEMO_PASSWORD = "helpdesk-demo"

TEAMS = ["一线客服组", "售后服务组", "VIP 专属组", "投诉处理组"]
SKILLS = [("chat", "在线聊天"), ("email", "邮件"), ("phone", "电话"), ("after_sales", "售后"), ("vip", "VIP 服务"), ("english", "英语")]
LOGINS = [
    # username, role, display name, team index or None
    ("admin", roles.ADMINISTRATOR, "系统管理员", None),
    ("lead", roles.TEAM_LEAD, "王组长", 0),
    ("agent", roles.AGENT, "李客服", 0),
    ("inspector", roles.QA_INSPECTOR, "赵质检", None),
    ("trainer", roles.TRAINER, "孙培训", None),
]
EXTRA_AGENTS = ["陈晓", "刘洋", "杨帆", "黄婷", "周杰", "吴敏", "徐静", "孙磊", "马丽", "朱红", "胡斌", "郭佳"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国玉兰萍红鹏飞宇浩然子涵梓萱欣怡一诺思远雨泽晨阳佳怡俊杰"
CHANNEL_WEIGHTS = [
    (Channel.WEB_CHAT, 30), (Channel.APP_CHAT, 25), (Channel.WECHAT, 20), (Channel.EMAIL, 10),
    (Channel.PHONE, 8), (Channel.WEIBO, 3), (Channel.DOUYIN, 3), (Channel.OTHER, 1),
]
PRIORITY_WEIGHTS = [(Ticket.Priority.LOW, 15), (Ticket.Priority.NORMAL, 60), (Ticket.Priority.HIGH, 20), (Ticket.Priority.URGENT, 5)]
TIER_WEIGHTS = [(Customer.Tier.STANDARD, 85), (Customer.Tier.VIP, 12), (Customer.Tier.ENTERPRISE, 3)]
# Chat traffic peaks late morning, mid-afternoon and in the evening (local time).
HOUR_WEIGHTS = [1, 1, 0, 0, 0, 1, 2, 4, 7, 10, 12, 11, 8, 9, 11, 11, 10, 9, 8, 9, 10, 9, 6, 3]
TAGS = ["加急", "重复来电", "已补偿", "需回访", "物流延误", "质量问题", "好评", "新用户"]

# category code → (subjects, what the customer says, how the agent answers)
CONVERSATIONS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "returns": (
        ["申请退货", "换货咨询", "七天无理由退货"],
        ["你好，我上周买的{product}有点问题，想退货，怎么操作？", "收到的{product}尺码不对，可以换一个吗？"],
        ["您好，已为您提交退货申请，快递员会在 1-2 个工作日内上门取件。", "可以的，请在订单页面点击“申请售后”，选择换货即可。"],
    ),
    "delivery": (
        ["快递一直没到", "物流信息不更新", "催发货"],
        ["我的订单已经五天了还没到，物流一直显示运输中。", "下单三天了还没发货，能催一下吗？"],
        ["非常抱歉让您久等，已联系快递公司加急处理，预计明天送达。", "已为您催促仓库，今天内发出，单号稍后短信通知您。"],
    ),
    "refund": (
        ["退款还没到账", "退款进度查询"],
        ["退货已经寄回去一周了，退款还没收到。", "请问退款多久能到账？"],
        ["已查到您的退款，款项已原路退回，1-3 个工作日到账。", "退款已审核通过，银行处理通常需要 3-5 个工作日。"],
    ),
    "repair": (["产品维修", "保修咨询"], ["{product}开不了机了，还在保修期内吗？"], ["您的设备在保修期内，可以免费寄修，我把寄修地址发给您。"]),
    "product_features": (
        ["功能怎么用", "设置问题"],
        ["{product}的夜间模式在哪里打开？", "怎么把{product}连接到手机？"],
        ["在“设置-显示”里可以打开夜间模式。", "请打开手机蓝牙，在 App 首页点击“添加设备”即可。"],
    ),
    "product_pricing": (["价格咨询", "有没有优惠"], ["{product}现在多少钱？以后会降价吗？"], ["目前活动价 299 元，本周下单还送配件。"]),
    "product_compatibility": (["兼容性问题"], ["{product}支持苹果手机吗？"], ["支持 iOS 14 及以上版本。"]),
    "account_security": (
        ["账号被盗", "异地登录提醒"],
        ["我收到异地登录提醒，但不是我本人登录的！", "账号好像被别人登录了，怎么办？"],
        ["已为您冻结账号并强制下线所有设备，请尽快修改密码并开启二次验证。"],
    ),
    "login": (["登录不上", "收不到验证码"], ["一直收不到短信验证码，登录不了。"], ["请检查短信是否被拦截，也可以改用语音验证码登录。"]),
    "billing": (["开发票", "账单有误"], ["需要开增值税专用发票，怎么申请？"], ["请在“我的订单-申请发票”中填写抬头和税号，3 个工作日内开出。"]),
    "complaint_service": (
        ["投诉客服态度", "投诉处理太慢"],
        ["上次打电话客服态度很差，问题也没解决！", "问题反馈了两周都没人处理，太失望了。"],
        ["非常抱歉给您带来不好的体验，我们已记录并会严肃处理，今天内给您回复。"],
    ),
    "suggestion": (["产品建议"], ["建议 App 增加深色模式，晚上用太刺眼了。"], ["感谢您的建议，已经反馈给产品团队。"]),
    "coupon": (["优惠券用不了", "优惠券过期"], ["领的满减券结算时用不了，为什么？"], ["这张券仅限自营商品使用，您购物车里有第三方商品。"]),
    "campaign": (["双十一活动", "活动规则咨询"], ["双十一的定金可以退吗？"], ["定金在尾款支付前可以申请退还，支付尾款后不退。"]),
}
PRODUCTS = ["扫地机器人", "蓝牙耳机", "智能手表", "空气净化器", "电动牙刷", "运动鞋", "羽绒服", "保温杯", "护肤套装"]
FOLLOW_UPS = ["好的，谢谢！", "那大概要多久？", "还是不行，能再帮我看看吗？", "明白了，麻烦尽快处理。"]
CLOSINGS = ["请问还有其他可以帮您的吗？祝您生活愉快！", "问题已处理完毕，如有疑问随时联系我们。"]
INTERNAL_NOTES = ["客户情绪较激动，注意安抚。", "已联系仓库核实库存。", "转售后组跟进。"]


@dataclass(frozen=True)
class Login:
    username: str
    password: str
    role: str


def demo_password() -> str:
    return os.environ.get(DEMO_PASSWORD_ENV, DEFAULT_DEMO_PASSWORD)


@transaction.atomic
def ensure_organisation() -> list[Login]:
    """Teams, skills, agents and one login per role; existing ones are left as they are."""
    teams = [Team.objects.get_or_create(name=name)[0] for name in TEAMS]
    skills = [Skill.objects.get_or_create(code=code, defaults={"name": name})[0] for code, name in SKILLS]
    for name in TAGS:
        Tag.objects.get_or_create(name=name)
    password = demo_password()
    logins = []
    for username, role, display_name, team_index in LOGINS:
        user, created = User.objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": role == roles.ADMINISTRATOR}
        )
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
        user.groups.add(Group.objects.get(name=role))
        if role in (roles.AGENT, roles.TEAM_LEAD):
            agent, _ = Agent.objects.get_or_create(user=user, defaults={"display_name": display_name})
            agent.teams.add(teams[team_index])
            agent.skills.add(skills[0], skills[1])
        shown = password if created or user.check_password(password) else "(changed)"
        logins.append(Login(username, shown, role))
    agent_group = Group.objects.get(name=roles.AGENT)
    for index, display_name in enumerate(EXTRA_AGENTS):
        user, created = User.objects.get_or_create(username=f"agent{index + 1:02d}", defaults={"is_staff": True})
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            user.groups.add(agent_group)
        agent, _ = Agent.objects.get_or_create(
            user=user,
            defaults={"display_name": display_name, "presence": random.Random(index).choice(Agent.Presence.values)},
        )
        agent.teams.add(teams[index % len(teams)])
        agent.skills.add(skills[index % len(skills)], skills[(index + 2) % len(skills)])
    ensure_routing(teams, {skill.code: skill for skill in skills})
    return logins


def ensure_routing(teams: list[Team], skills: dict[str, Skill]) -> None:
    """Routing as a shop would start: VIPs to the VIP team, complaints and after-sales by keyword."""
    if RoutingRule.objects.exists():
        return
    after_sales = Category.objects.filter(code="after_sales").first()
    rules = [
        ("VIP 客户", {"tiers": [Customer.Tier.VIP, Customer.Tier.ENTERPRISE]}, teams[2], skills["vip"], None),
        ("投诉关键词", {"keywords": "投诉\n差评\n12315\ncomplaint"}, teams[3], None, None),
        ("售后关键词", {"keywords": "退货\n换货\n退款\n维修\nrefund\nreturn"}, teams[1], skills["after_sales"], after_sales),
        ("其余咨询", {}, teams[0], None, None),
    ]
    for position, (name, conditions, team, skill, category) in enumerate(rules):
        RoutingRule.objects.create(
            name=name, position=position * 10, team=team, skill=skill, suggested_category=category, **conditions
        )


def _weighted(rng: random.Random, pairs: list[tuple[str, int]]) -> Callable[[], str]:
    values = [value for value, _ in pairs]
    weights = [weight for _, weight in pairs]
    return lambda: rng.choices(values, weights)[0]


def ensure_customers(target: int, rng: random.Random) -> list[int]:
    """At least `target` customers; returns the ids of all of them."""
    missing = target - Customer.objects.count()
    tier = _weighted(rng, TIER_WEIGHTS)
    now = timezone.now()
    batch = []
    start = Customer.objects.count()
    for index in range(max(missing, 0)):
        number = start + index
        name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice([1, 2])))
        batch.append(
            Customer(
                name=name,
                phone=f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}",
                email=f"user{number}@example.com" if rng.random() < 0.4 else "",
                tier=tier(),
                first_seen_at=now - timedelta(days=rng.randrange(365)),
            )
        )
    Customer.objects.bulk_create(batch, batch_size=2000)
    return list(Customer.objects.order_by("pk").values_list("pk", flat=True))


def seed_tickets(target: int, *, seed: int = 2026, days: int = 90, progress: Callable[[int], None] = lambda n: None) -> int:
    """Top the database up to `target` tickets with conversations; returns how many were added."""
    missing = target - Ticket.objects.count()
    if missing <= 0:
        return 0
    rng = random.Random(seed + Ticket.objects.count())
    customer_ids = ensure_customers(max(50, target // 5), rng)
    agents = list(Agent.objects.prefetch_related("teams"))
    if not agents:
        raise ValueError("No agents: run ensure_organisation() first.")
    categories = {c.code: c for c in Category.objects.filter(code__in=CONVERSATIONS)}
    tag_ids = list(Tag.objects.values_list("pk", flat=True))
    added = 0
    batch_size = 2000
    for count in _batches(missing, batch_size):
        with transaction.atomic():
            _seed_batch(count, rng=rng, days=days, customer_ids=customer_ids, agents=agents,
                        categories=categories, tag_ids=tag_ids)
        added += count
        progress(count)
    return added


def _batches(total: int, size: int) -> Iterator[int]:
    while total > 0:
        yield min(size, total)
        total -= size


def _seed_batch(count: int, *, rng: random.Random, days: int, customer_ids: list[int], agents: list[Agent],
                categories: dict[str, Category], tag_ids: list[int]) -> None:
    now = timezone.now()
    channel = _weighted(rng, CHANNEL_WEIGHTS)
    priority = _weighted(rng, PRIORITY_WEIGHTS)
    hours = list(range(24))
    team_of = {agent.pk: next(iter(agent.teams.all()), None) for agent in agents}
    tickets, plans = [], []
    for _ in range(count):
        day = now - timedelta(days=rng.randrange(days))
        local = timezone.localtime(day)
        created = local.replace(hour=rng.choices(hours, HOUR_WEIGHTS)[0], minute=rng.randrange(60), second=rng.randrange(60))
        if created > now:
            created -= timedelta(days=1)
        code = rng.choice(list(categories))
        subjects, asks, answers = CONVERSATIONS[code]
        ticket_channel = channel()
        agent = rng.choice(agents)
        age = now - created
        status = _status_for(age, rng)
        thread = _thread(rng, created, ticket_channel, status, asks, answers)
        replies = [at for kind, at, _, internal in thread if kind == "agent" and not internal]
        last_at = thread[-1][1]
        ticket = Ticket(
            subject=rng.choice(subjects),
            customer_id=rng.choice(customer_ids),
            channel=ticket_channel,
            category=categories[code],
            priority=priority(),
            status=status,
            team=team_of[agent.pk],
            assignee=None if status == Ticket.Status.NEW else agent,
            created_at=created,
            updated_at=last_at,
            first_response_at=replies[0] if replies else None,
            public_replies=len(replies),
            last_customer_message_at=max(at for kind, at, _, _ in thread if kind == "customer"),
            solved_at=last_at if status in (Ticket.Status.SOLVED, Ticket.Status.CLOSED) else None,
            closed_at=last_at + timedelta(days=4) if status == Ticket.Status.CLOSED else None,
        )
        tickets.append(ticket)
        plans.append((thread, agent))
    bulk_create_with_history(tickets, Ticket, batch_size=len(tickets), default_change_reason="seed_demo")
    messages, tag_links = [], []
    Through = Ticket.tags.through
    for ticket, (thread, agent) in zip(tickets, plans, strict=True):
        for kind, at, body, internal in thread:
            messages.append(
                Message(ticket_id=ticket.pk, author_kind=kind, author_agent=agent if kind == "agent" else None,
                        is_internal=internal, body=body, sent_at=at, created_at=at)
            )
        if tag_ids and rng.random() < 0.3:
            tag_links.append(Through(ticket_id=ticket.pk, tag_id=rng.choice(tag_ids)))
    Message.objects.bulk_create(messages, batch_size=5000)
    Through.objects.bulk_create(tag_links, batch_size=5000)
    tiers = dict(Customer.objects.filter(pk__in={t.customer_id for t in tickets}).values_list("pk", "tier"))
    SlaClock.objects.bulk_create(sla.clocks_from_history(tickets, now=now, tiers=tiers), batch_size=5000)


def _status_for(age: timedelta, rng: random.Random) -> str:
    if age > timedelta(days=5):
        return Ticket.Status.CLOSED if rng.random() < 0.9 else Ticket.Status.SOLVED
    if age > timedelta(days=1):
        return rng.choices(
            [Ticket.Status.SOLVED, Ticket.Status.OPEN, Ticket.Status.PENDING, Ticket.Status.ON_HOLD], [6, 2, 1, 1]
        )[0]
    return rng.choices(
        [Ticket.Status.NEW, Ticket.Status.OPEN, Ticket.Status.PENDING, Ticket.Status.SOLVED], [3, 4, 1, 2]
    )[0]


def _thread(rng: random.Random, start: datetime, channel: str, status: str, asks: list[str],
            answers: list[str]) -> list[tuple[str, datetime, str, bool]]:
    """(author kind, sent at, body, internal) of a plausible conversation."""
    product = rng.choice(PRODUCTS)
    is_chat = channel in (Channel.WEB_CHAT, Channel.APP_CHAT, Channel.WECHAT, Channel.WEIBO, Channel.DOUYIN)
    gap = (lambda: timedelta(seconds=rng.randrange(5, 120))) if is_chat else (lambda: timedelta(minutes=rng.randrange(10, 600)))
    at = start
    thread = [("customer", at, rng.choice(asks).format(product=product), False)]
    if status == Ticket.Status.NEW:
        return thread
    if rng.random() < 0.15:
        at += gap()
        thread.append(("agent", at, rng.choice(INTERNAL_NOTES), True))
    at += gap()
    thread.append(("agent", at, rng.choice(answers), False))
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        at += gap()
        thread.append(("customer", at, rng.choice(FOLLOW_UPS), False))
        at += gap()
        thread.append(("agent", at, rng.choice(answers), False))
    if status in (Ticket.Status.SOLVED, Ticket.Status.CLOSED):
        at += gap()
        thread.append(("agent", at, rng.choice(CLOSINGS), False))
    return thread
