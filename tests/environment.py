"""Loaded with `-p` before Django starts: the settings tests run with, set in the environment."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentstats.settings")
# The test clients and live servers speak plain HTTP; production redirects to HTTPS.
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
