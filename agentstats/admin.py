"""Admin for users: the support flag next to Django's own fields."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from agentstats.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "is_staff", "is_support", "is_active")
    list_filter = ("is_staff", "is_support", "is_active")
    readonly_fields = ("uuid",)
    fieldsets = (
        *(DjangoUserAdmin.fieldsets or ()),
        ("agentstats", {"fields": ("uuid", "is_support")}),
    )
