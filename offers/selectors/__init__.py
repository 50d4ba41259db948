"""Reads of the offers app for screens, the API and other apps: eligibility, the catalog a member
may redeem, the coupon wallet, and the personalized ranking (``offers_for_member``)."""
