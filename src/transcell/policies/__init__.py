"""Policy defaults of the image, network and volume APIs, by service.

The compute and identity defaults live in ``transcell.policy`` with the
enforcer; these modules only declare rules, so they import nothing from it
and ``transcell.policy.list_rules`` can gather every service's rules at once.
"""
