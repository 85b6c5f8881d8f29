"""The storefront's vocabulary: categories, nouns, colours, materials, brands, synonyms.

Everything the generator writes into a title, a description or a search query comes
from here, so tests can check queries against the same lists (e.g. :data:`COLOURS` and
:data:`CATEGORY_NAMES`).

A category's ``materials`` is its variant axis: a material for durable goods
("ceramic"), a roast, flavour or scent for consumables ("dark roast", "lavender").
``consumable`` categories are the ones users re-buy; ``coloured`` says whether a
colour belongs in the title. Prices are log-normal per category: the median and the
log-scale spread are given here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    name: str
    nouns: tuple[str, ...]
    materials: tuple[str, ...]
    blurb: str
    price_median: float
    price_sigma: float
    weight: float = 1.0  # relative share of catalogue and of shopper interest
    coloured: bool = True
    consumable: bool = False
    cycle_days: float = 0.0  # consumables: mean days until a shopper re-buys


CATEGORIES: tuple[Category, ...] = (
    Category("Drinkware", ("mug", "travel mug", "tumbler", "teacup", "water bottle"),
             ("ceramic", "glass", "stainless steel", "enamel", "bamboo"),
             "Keeps drinks at the right temperature and is easy to clean.", 14.0, 0.45, 1.4),
    Category("Coffee", ("coffee beans", "ground coffee", "coffee pods", "cold brew"),
             ("arabica", "espresso", "decaf", "dark roast", "single origin"),
             "Freshly roasted and sealed to keep the aroma.", 11.0, 0.35, 1.3,
             coloured=False, consumable=True, cycle_days=18),
    Category("Tea", ("green tea", "black tea", "herbal tea", "tea bags", "matcha"),
             ("loose leaf", "organic", "jasmine", "chamomile", "earl grey"),
             "Picked and packed for a bright, clean cup.", 8.0, 0.35, 1.1,
             coloured=False, consumable=True, cycle_days=24),
    Category("Soap & Bath", ("soap", "hand wash", "body wash", "bath salts", "shampoo"),
             ("lavender", "citrus", "oatmeal", "charcoal", "rose"),
             "Gentle on skin, made with plant oils.", 7.0, 0.4, 1.2,
             coloured=False, consumable=True, cycle_days=30),
    Category("Candles", ("candle", "tealight", "candle holder", "reed diffuser", "wax melt"),
             ("soy", "beeswax", "vanilla", "sandalwood", "lavender"),
             "Slow, even burn that fills the room with scent.", 16.0, 0.45, 1.2,
             consumable=True, cycle_days=35),
    Category("Bags", ("backpack", "tote bag", "handbag", "wallet", "duffel bag"),
             ("leather", "canvas", "nylon", "cotton", "suede"),
             "Roomy pockets and sturdy straps for every day.", 45.0, 0.6, 1.0),
    Category("Footwear", ("sneakers", "boots", "sandals", "slippers", "loafers"),
             ("leather", "suede", "canvas", "mesh", "rubber"),
             "Cushioned sole for comfort from morning to night.", 60.0, 0.5, 1.0),
    Category("Apparel", ("t-shirt", "hoodie", "sweater", "jacket", "scarf"),
             ("cotton", "wool", "linen", "denim", "fleece"),
             "Soft fabric, relaxed fit, easy to wash.", 30.0, 0.55, 1.3),
    Category("Lighting", ("lamp", "desk lamp", "pendant light", "string lights", "lantern"),
             ("brass", "rattan", "glass", "metal", "wood"),
             "Warm light that makes a room feel like home.", 40.0, 0.6, 0.8),
    Category("Cushions & Throws", ("cushion", "throw blanket", "pillow", "rug", "bean bag"),
             ("velvet", "wool", "cotton", "linen", "faux fur"),
             "Adds texture and comfort to sofa and bed.", 28.0, 0.5, 0.9),
    Category("Tableware", ("plate", "bowl", "serving platter", "cutlery set", "placemat"),
             ("porcelain", "stoneware", "ceramic", "bamboo", "marble"),
             "Made for everyday meals and special dinners.", 22.0, 0.5, 0.9),
    Category("Audio", ("headphones", "earbuds", "speaker", "soundbar", "radio"),
             ("wireless", "bluetooth", "noise cancelling", "portable", "studio"),
             "Clear sound with deep bass and long battery life.", 70.0, 0.7, 0.9),
    Category("Phone Accessories", ("phone case", "charger", "charging cable", "phone stand", "power bank"),
             ("silicone", "leather", "aluminium", "recycled plastic", "magnetic"),
             "Protects and powers the phone you carry everywhere.", 18.0, 0.5, 1.0),
    Category("Stationery", ("notebook", "pen", "planner", "sketchbook", "pencil case"),
             ("recycled paper", "leather", "kraft", "linen", "gel ink"),
             "Smooth paper and a binding that lies flat.", 9.0, 0.5, 0.9),
    Category("Toys", ("plush toy", "puzzle", "building blocks", "board game", "toy car"),
             ("wooden", "plastic", "felt", "cardboard", "organic cotton"),
             "Safe, sturdy and made for hours of play.", 20.0, 0.55, 0.8),
    Category("Garden", ("plant pot", "watering can", "planter", "bird feeder", "seed kit"),
             ("terracotta", "ceramic", "galvanised steel", "concrete", "recycled plastic"),
             "Weatherproof and made to last season after season.", 19.0, 0.55, 0.7),
    Category("Jewellery", ("necklace", "bracelet", "earrings", "ring", "watch"),
             ("sterling silver", "gold plated", "rose gold", "pearl", "beaded"),
             "Hypoallergenic finish, gift box included.", 35.0, 0.7, 0.8),
    Category("Towels", ("bath towel", "hand towel", "beach towel", "bathrobe", "bath mat"),
             ("cotton", "bamboo", "linen", "microfibre", "terry"),
             "Thick, absorbent and quick to dry.", 18.0, 0.4, 0.7),
    Category("Skincare", ("face cream", "serum", "lip balm", "face mask", "sunscreen"),
             ("hyaluronic", "vitamin c", "aloe vera", "shea butter", "retinol"),
             "Dermatologist tested for sensitive skin.", 17.0, 0.5, 1.0,
             coloured=False, consumable=True, cycle_days=40),
    Category("Snacks", ("chocolate", "granola", "cookies", "nuts", "crackers"),
             ("dark", "salted caramel", "almond", "honey", "sea salt"),
             "Small-batch recipe with simple ingredients.", 5.0, 0.35, 1.0,
             coloured=False, consumable=True, cycle_days=14),
)

CATEGORY_NAMES: tuple[str, ...] = tuple(c.name for c in CATEGORIES)

COLOURS: tuple[str, ...] = (
    "red", "blue", "green", "black", "white", "grey", "navy", "pink",
    "yellow", "orange", "purple", "brown", "beige", "teal", "gold", "silver",
)

BRANDS: tuple[str, ...] = (
    "Lumen", "Northwind", "Oakridge", "Brightly", "Alder", "Birchwood", "Cobalt", "Driftwood",
    "Ember", "Fennel", "Granite", "Harbor", "Indigo Lane", "Juniper", "Kestrel", "Linden",
    "Maple & Moss", "Nordhaus", "Orchard", "Pebble", "Quill", "Rowan", "Saffron", "Tidewell",
    "Umber", "Verdant", "Willow", "Yarrow", "Zephyr", "Bramble", "Cedar Row", "Dune",
)

# Adjective -> shift of the item's log-price in units of the category's sigma.
ADJECTIVES: dict[str, float] = {
    "Classic": 0.0, "Modern": 0.1, "Handmade": 0.4, "Vintage": 0.2, "Premium": 0.7,
    "Eco": 0.1, "Minimal": 0.0, "Rustic": -0.1, "Deluxe": 0.8, "Compact": -0.3,
    "Everyday": -0.5, "Artisan": 0.5,
}

# Query-side words a shopper may type for a title word. Every noun has at least one.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "mug": ("cup",), "travel mug": ("thermos", "commuter cup"), "tumbler": ("beaker", "insulated cup"),
    "teacup": ("tea cup",), "water bottle": ("drinks bottle", "flask"),
    "coffee beans": ("whole bean coffee",), "ground coffee": ("filter coffee",),
    "coffee pods": ("coffee capsules",), "cold brew": ("iced coffee",),
    "green tea": ("sencha",), "black tea": ("breakfast tea",), "herbal tea": ("tisane", "infusion"),
    "tea bags": ("teabags",), "matcha": ("matcha powder",),
    "soap": ("soap bar",), "hand wash": ("hand soap",), "body wash": ("shower gel",),
    "bath salts": ("bath soak",), "shampoo": ("hair wash",),
    "candle": ("scented candle",), "tealight": ("tea light",), "candle holder": ("candlestick",),
    "reed diffuser": ("room diffuser",), "wax melt": ("wax tart",),
    "backpack": ("rucksack",), "tote bag": ("shopper bag",), "handbag": ("purse",),
    "wallet": ("billfold",), "duffel bag": ("holdall", "gym bag"),
    "sneakers": ("trainers",), "boots": ("ankle boots",), "sandals": ("flip flops",),
    "slippers": ("house shoes",), "loafers": ("moccasins",),
    "t-shirt": ("tee", "tshirt"), "hoodie": ("hooded sweatshirt",), "sweater": ("jumper", "pullover"),
    "jacket": ("coat",), "scarf": ("shawl",),
    "lamp": ("light",), "desk lamp": ("reading lamp",), "pendant light": ("ceiling light",),
    "string lights": ("fairy lights",), "lantern": ("candle lantern",),
    "cushion": ("throw pillow",), "throw blanket": ("throw",), "pillow": ("bed pillow",),
    "rug": ("carpet",), "bean bag": ("floor cushion",),
    "plate": ("dinner plate",), "bowl": ("dish",), "serving platter": ("serving tray",),
    "cutlery set": ("flatware",), "placemat": ("table mat",),
    "headphones": ("headset",), "earbuds": ("earphones",), "speaker": ("loudspeaker",),
    "soundbar": ("tv speaker",), "radio": ("dab radio",),
    "phone case": ("phone cover",), "charger": ("charging plug",), "charging cable": ("usb cable",),
    "phone stand": ("phone holder",), "power bank": ("portable charger",),
    "notebook": ("notepad", "journal"), "pen": ("ballpoint",), "planner": ("diary", "organiser"),
    "sketchbook": ("drawing pad",), "pencil case": ("pencil pouch",),
    "plush toy": ("soft toy", "teddy"), "puzzle": ("jigsaw",), "building blocks": ("bricks",),
    "board game": ("family game",), "toy car": ("model car",),
    "plant pot": ("flower pot",), "watering can": ("watering jug",), "planter": ("window box",),
    "bird feeder": ("bird table",), "seed kit": ("grow kit",),
    "necklace": ("pendant",), "bracelet": ("bangle",), "earrings": ("studs",),
    "ring": ("band ring",), "watch": ("wristwatch",),
    "bath towel": ("bath sheet",), "hand towel": ("guest towel",), "beach towel": ("pool towel",),
    "bathrobe": ("dressing gown",), "bath mat": ("shower mat",),
    "face cream": ("moisturiser", "moisturizer"), "serum": ("face serum",), "lip balm": ("chapstick",),
    "face mask": ("sheet mask",), "sunscreen": ("sun cream", "spf"),
    "chocolate": ("choc bar",), "granola": ("muesli",), "cookies": ("biscuits",),
    "nuts": ("mixed nuts",), "crackers": ("crispbread",),
}

# Spelling variants shoppers use for colours; the title always has the first form.
COLOUR_SYNONYMS: dict[str, tuple[str, ...]] = {"grey": ("gray",), "navy": ("dark blue",), "beige": ("cream",)}

# Price caps a query like "mug under 20" may use: the smallest cap at or above the price.
PRICE_CAPS: tuple[int, ...] = (5, 10, 15, 20, 25, 30, 40, 50, 75, 100, 150, 200, 300, 500, 1000)
PRICE_PHRASES: tuple[str, ...] = ("under {cap}", "below {cap}", "less than {cap}", "under ${cap}")

NOUNS: tuple[str, ...] = tuple(n for c in CATEGORIES for n in c.nouns)
MATERIALS: tuple[str, ...] = tuple(dict.fromkeys(m for c in CATEGORIES for m in c.materials))
