from celery import shared_task

from offers.services.ranking import TOP_DEFAULT, member_offer_ranks_compute


@shared_task(name="offers.rank_offers_for_members")
def rank_offers_for_members(top: int = TOP_DEFAULT) -> int:
    """Nightly batch ranking of every member's offers and rewards (``member_offer_ranks_compute``)."""
    return member_offer_ranks_compute(top=top).members
