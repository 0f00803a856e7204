"""Factories for every model, with SubFactory chains that agree with each other."""

from __future__ import annotations

import factory
from django.contrib.auth.models import User
from django.utils import timezone
from factory.django import DjangoModelFactory

from helpdesk.models import Agent, Channel, Customer, CustomerIdentity, Skill, Tag, Team
from tickets.models import Category, Message, Ticket


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    is_staff = True
    password = factory.django.Password("pass-word-123")


class TeamFactory(DjangoModelFactory[Team]):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")


class SkillFactory(DjangoModelFactory[Skill]):
    class Meta:
        model = Skill

    code = factory.Sequence(lambda n: f"skill-{n}")
    name = factory.Sequence(lambda n: f"Skill {n}")


class TagFactory(DjangoModelFactory[Tag]):
    class Meta:
        model = Tag

    name = factory.Sequence(lambda n: f"tag-{n}")


class AgentFactory(DjangoModelFactory[Agent]):
    class Meta:
        model = Agent
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    display_name = factory.LazyAttribute(lambda a: a.user.username.title())

    @factory.post_generation
    def teams(self, create: bool, extracted: list[Team] | None, **kwargs) -> None:
        if create and extracted:
            self.teams.add(*extracted)


class CustomerFactory(DjangoModelFactory[Customer]):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"客户{n}")
    phone = factory.Sequence(lambda n: f"138{n:08d}")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")


class CustomerIdentityFactory(DjangoModelFactory[CustomerIdentity]):
    class Meta:
        model = CustomerIdentity

    customer = factory.SubFactory(CustomerFactory)
    channel = Channel.WECHAT
    external_id = factory.Sequence(lambda n: f"openid-{n}")


class CategoryFactory(DjangoModelFactory[Category]):
    class Meta:
        model = Category

    code = factory.Sequence(lambda n: f"category-{n}")
    name = factory.Sequence(lambda n: f"分类{n}")
    name_en = factory.Sequence(lambda n: f"Category {n}")


class TicketFactory(DjangoModelFactory[Ticket]):
    class Meta:
        model = Ticket

    subject = factory.Sequence(lambda n: f"问题 {n}")
    customer = factory.SubFactory(CustomerFactory)
    channel = Channel.WEB_CHAT
    team = factory.SubFactory(TeamFactory)
    status = Ticket.Status.NEW


class MessageFactory(DjangoModelFactory[Message]):
    class Meta:
        model = Message

    ticket = factory.SubFactory(TicketFactory)
    author_kind = Message.AuthorKind.CUSTOMER
    body = factory.Sequence(lambda n: f"消息内容 {n}")
    sent_at = factory.LazyFunction(timezone.now)
