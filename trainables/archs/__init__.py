"""One module per architecture family.

`trainables.registry.discover` imports every module here whose name does not start with
`_` (those hold shared helpers), which registers its entries: adding a family is adding
its file, nothing is listed here.
"""
