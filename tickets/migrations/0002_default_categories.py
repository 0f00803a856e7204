"""Ship the default category tree. Data only; reversible (removes only unused defaults)."""

from django.db import migrations

CATEGORIES = [
    ("product", "产品咨询", "Product questions", None),
    ("product_features", "功能使用", "Features and usage", "product"),
    ("product_pricing", "价格咨询", "Pricing", "product"),
    ("product_compatibility", "兼容性", "Compatibility", "product"),
    ("after_sales", "售后服务", "After-sales", None),
    ("returns", "退换货", "Returns and exchanges", "after_sales"),
    ("delivery", "物流", "Delivery", "after_sales"),
    ("repair", "维修", "Repairs", "after_sales"),
    ("refund", "退款", "Refunds", "after_sales"),
    ("account", "账户问题", "Account", None),
    ("account_security", "账户安全", "Account security", "account"),
    ("login", "登录注册", "Sign-in and registration", "account"),
    ("billing", "账单发票", "Billing and invoices", "account"),
    ("complaint", "投诉建议", "Complaints and suggestions", None),
    ("complaint_service", "服务投诉", "Service complaints", "complaint"),
    ("suggestion", "产品建议", "Product suggestions", "complaint"),
    ("promotion", "活动咨询", "Promotions", None),
    ("coupon", "优惠券", "Coupons", "promotion"),
    ("campaign", "促销活动", "Campaigns", "promotion"),
]


def create_categories(apps, schema_editor):
    Category = apps.get_model("tickets", "Category")
    by_code = {}
    for position, (code, name, name_en, parent) in enumerate(CATEGORIES):
        by_code[code], _ = Category.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "name_en": name_en,
                "parent": by_code.get(parent),
                "position": position,
            },
        )


def delete_categories(apps, schema_editor):
    Category = apps.get_model("tickets", "Category")
    codes = [code for code, *_ in CATEGORIES]
    Category.objects.filter(code__in=codes, parent__isnull=False, tickets__isnull=True).delete()
    Category.objects.filter(
        code__in=codes, parent__isnull=True, tickets__isnull=True, children__isnull=True
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("tickets", "0001_initial")]

    operations = [migrations.RunPython(create_categories, delete_categories)]
