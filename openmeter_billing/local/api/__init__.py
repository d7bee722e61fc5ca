"""Local OpenMeter's HTTP layer (internal): routing, request validation, handlers, rendering.

The only package that knows about requests and answers. It reads and changes the store
(:mod:`..state`), asks the balance engine (:mod:`..engine`) and the meters (:mod:`..meters`) for
numbers, and nothing below it imports it back.
"""
