"""SMS beside voice: the campaigns' SMS steps sent through the gateways at their rate, and the
replies that count as answers (`ivr.campaign.plan` says when a person gets one)."""
