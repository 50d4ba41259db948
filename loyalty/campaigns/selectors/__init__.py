"""Reads of this app for screens, the API and other apps. No writes."""
