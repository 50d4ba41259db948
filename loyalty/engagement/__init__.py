"""Engagement: surveys, referrals, challenges and badges, birthdays and anniversaries, community events."""
