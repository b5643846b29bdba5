"""Local HTTP imitations of the SaaS platforms (Luma, Eventbrite, Clerk) for tests and the demo.

They speak the platforms' documented formats, including their failures, which tests switch
on through `fakes.common.Faults`. `python -m fakes serve` runs the Luma and Eventbrite fakes.
"""
