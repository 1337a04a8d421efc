"""The demo brand as plain data: Ember & Fig, a small London perfumer.

Nothing here touches a database; the steps in ``catalog.py`` and ``shoppers.py`` write it and
``history.py`` invents shoppers who buy it. Prices are integer pence (GBP), weights are the
packed shipping weight in grams.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dropline.catalog.models import ConditionGrade
from dropline.locations.models import LocationKind

BRAND_NAME = "Ember & Fig — London perfumers"
BRAND_SHORT_NAME = "Ember & Fig"
CURRENCY = "GBP"
# The shop opened (catalog created) this long before the demo's "now"; sign-ups span the year after.
LAUNCH_DAYS_AGO = 395
HISTORY_DAYS = 365


@dataclass(frozen=True)
class Family:
    slug: str
    name: str


FAMILIES: tuple[Family, ...] = (
    Family("eau-de-parfum", "Eau de parfum"),
    Family("candles", "Candles"),
    Family("refills", "Refills"),
    Family("discovery-sets", "Discovery sets"),
    Family("restored-diffusers", "Restored ceramic diffusers"),
)


@dataclass(frozen=True)
class DemoVariant:
    sku: str
    name: str
    price: int  # pence
    weight_grams: int
    grade: ConditionGrade = ConditionGrade.new
    disclosure: str = ""
    final_sale: bool = False
    # Units on hand per location code; a code missing here holds none.
    stock: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoProduct:
    slug: str
    name: str
    family: str
    description: str
    variants: tuple[DemoVariant, ...]
    # Relative popularity inside its family (the hero scent sells most).
    popularity: float = 1.0
    # The refill that tops this product up, if any (a repeat buyer often comes back for it).
    refill_sku: str | None = None


# Location codes. The central warehouse takes the shop's ``default_location_code`` when seeded,
# because live checkout takes stock from that location.
CENTRAL = "central"
HUBS = ("hub-hackney", "hub-brixton", "hub-camden", "hub-clapham")
FACTORY = "factory-bermondsey"
POP_UPS = ("popup-spitalfields", "popup-peckham")


def _scent(code: str, name: str, notes: str, *, price_10: int, price_50: int, price_100: int,
           popularity: float, stock_50: int) -> DemoProduct:
    hubs = {hub: max(2, stock_50 // 8) for hub in HUBS}
    return DemoProduct(
        slug=f"{code}-eau-de-parfum", name=f"{name} eau de parfum", family="eau-de-parfum",
        description=notes, popularity=popularity, refill_sku=f"EF-{code.upper()}-R100",
        variants=(
            DemoVariant(f"EF-{code.upper()}-10", "10 ml travel spray", price_10, 90,
                        stock={CENTRAL: stock_50 + 20, "popup-spitalfields": 12,
                               "popup-peckham": 6}),
            DemoVariant(f"EF-{code.upper()}-50", "50 ml", price_50, 340,
                        stock={CENTRAL: stock_50, **hubs, "popup-spitalfields": 6}),
            DemoVariant(f"EF-{code.upper()}-100", "100 ml", price_100, 520,
                        stock={CENTRAL: stock_50 // 2}),
        ),
    )


def _candle(code: str, name: str, notes: str, *, popularity: float, stock: int) -> DemoProduct:
    return DemoProduct(
        slug=f"{code}-candle", name=f"{name} candle", family="candles", description=notes,
        popularity=popularity,
        variants=(
            DemoVariant(f"EF-C-{code.upper()}-220", "220 g, one wick", 4800, 640,
                        stock={CENTRAL: stock, **{hub: 6 for hub in HUBS},
                               FACTORY: stock // 3}),
            DemoVariant(f"EF-C-{code.upper()}-600", "600 g, three wicks", 9500, 1450,
                        stock={CENTRAL: stock // 3, FACTORY: 4}),
        ),
    )


def _refill(code: str, name: str, *, price: int, stock: int) -> DemoProduct:
    return DemoProduct(
        slug=f"{code}-refill", name=f"{name} refill, 100 ml", family="refills",
        description=(f"Tops up your {name} bottle: an aluminium pouch, refilled at our Bermondsey "
                     "micro-factory, with a prepaid envelope to send it back for the next one."),
        variants=(DemoVariant(f"EF-{code.upper()}-R100", "100 ml pouch", price, 180,
                              stock={CENTRAL: stock, FACTORY: stock // 2,
                                     **{hub: 4 for hub in HUBS}}),),
    )


PRODUCTS: tuple[DemoProduct, ...] = (
    _scent("fig", "Fig Leaf & Smoke", "Green fig leaf over smouldering cedar and a little "
           "black tea: the scent the shop was started for.",
           price_10=2800, price_50=9500, price_100=14500, popularity=3.0, stock_50=60),
    _scent("tea", "Bermondsey Tea", "Smoky lapsang, bergamot and warm malt, after the tea "
           "warehouses down the road from our micro-factory.",
           price_10=2600, price_50=8800, price_100=13500, popularity=1.6, stock_50=40),
    _scent("fog", "Thames Fog", "Cold river air, iris and wet stone; quiet, close to the skin.",
           price_10=2600, price_50=8800, price_100=13500, popularity=1.2, stock_50=36),
    _scent("marsh", "Hackney Marshes", "Cut grass, nettle and vetiver on a June morning.",
           price_10=2600, price_50=8500, price_100=12900, popularity=1.0, stock_50=30),
    _scent("amber", "Ember Amber", "Labdanum, benzoin and a spark of pink pepper; a winter "
           "evening by the fire.",
           price_10=2900, price_50=9800, price_100=14900, popularity=1.4, stock_50=32),
    _scent("rose", "Black Pepper Rose", "A dark rose dusted with black pepper and oud.",
           price_10=3000, price_50=10500, price_100=15500, popularity=0.9, stock_50=24),
    _candle("fig", "Fig Leaf & Smoke", "Our hero scent, poured in a reusable stoneware vessel "
            "made in Stoke-on-Trent.", popularity=2.5, stock=80),
    _candle("tomato", "Tomato Leaf", "The smell of a south London allotment greenhouse.",
            popularity=1.4, stock=50),
    _candle("library", "Old Library", "Leather, paper and a little beeswax.",
            popularity=1.0, stock=40),
    _candle("pine", "Winter Pine", "Fir needles and clove, poured for December.",
            popularity=0.8, stock=30),
    _candle("neroli", "Neroli & Salt", "Orange blossom and sea salt; a summer candle.",
            popularity=0.8, stock=30),
    _refill("fig", "Fig Leaf & Smoke", price=11000, stock=40),
    _refill("tea", "Bermondsey Tea", price=10200, stock=24),
    _refill("fog", "Thames Fog", price=10200, stock=20),
    _refill("amber", "Ember Amber", price=11200, stock=20),
    DemoProduct(
        slug="discovery-set", name="The discovery set", family="discovery-sets",
        description="All six eaux de parfum in 2 ml vials, with a £24 credit towards a full "
                    "bottle. The easiest way to find your scent.",
        popularity=3.0,
        variants=(DemoVariant("EF-DS-6X2", "6 × 2 ml", 2400, 80,
                              stock={CENTRAL: 150, **{hub: 15 for hub in HUBS},
                                     "popup-spitalfields": 30, "popup-peckham": 12}),),
    ),
    DemoProduct(
        slug="candle-trio", name="Candle discovery trio", family="discovery-sets",
        description="Three 80 g travel candles: Fig Leaf & Smoke, Tomato Leaf, Old Library.",
        popularity=1.2,
        variants=(DemoVariant("EF-DS-C3", "3 × 80 g", 4500, 780,
                              stock={CENTRAL: 45, "popup-spitalfields": 8}),),
    ),
    DemoProduct(
        slug="gift-trio", name="Gift trio, 3 × 10 ml", family="discovery-sets",
        description="Any three travel sprays in a linen-wrapped box, ready to give.",
        popularity=1.0,
        variants=(DemoVariant("EF-DS-G3", "3 × 10 ml", 7800, 320,
                              stock={CENTRAL: 35, "popup-spitalfields": 5}),),
    ),
    # The graded line: returned and display diffusers, restored at Bermondsey. Every grade other
    # than new must say exactly what is wrong with the item (catalog rule).
    DemoProduct(
        slug="stoneware-reed-diffuser", name="Stoneware reed diffuser", family="restored-diffusers",
        description="A hand-thrown stoneware vessel with 200 ml of diffuser oil and rattan reeds. "
                    "Returned and ex-display vessels are restored in Bermondsey and sold graded.",
        popularity=2.0,
        variants=(
            DemoVariant("EF-RD-STONE-NEW", "New", 6800, 900, stock={CENTRAL: 25}),
            DemoVariant(
                "EF-RD-STONE-RA", "Restored, grade A", 5200, 900, ConditionGrade.refurbished_a,
                "Returned unused within 14 days. Vessel inspected and re-boxed; new oil and "
                "reeds. No visible marks.", stock={CENTRAL: 4}),
            DemoVariant(
                "EF-RD-STONE-RB", "Restored, grade B", 4200, 900, ConditionGrade.refurbished_b,
                "A hairline glaze craze on the base, not visible when standing; new oil and "
                "reeds. Watertight (tested for 48 hours).", stock={CENTRAL: 3}),
            DemoVariant(
                "EF-RD-STONE-USED", "Ex-display, used", 3000, 900, ConditionGrade.used,
                "Used for a season on our Spitalfields pop-up table: light scuffs around the "
                "rim and a 3 mm chip on the foot ring. New oil and reeds. Final sale.",
                final_sale=True, stock={CENTRAL: 2}),
        ),
    ),
    DemoProduct(
        slug="ink-blue-diffuser", name="Ink blue glazed diffuser", family="restored-diffusers",
        description="The ink blue glaze was a short run; these are the returned ones, restored.",
        popularity=1.0,
        variants=(
            DemoVariant(
                "EF-RD-INK-RA", "Restored, grade A", 5600, 950, ConditionGrade.refurbished_a,
                "Returned unused; box replaced. No visible marks on the vessel.",
                stock={CENTRAL: 3}),
            DemoVariant(
                "EF-RD-INK-RB", "Restored, grade B", 4400, 950, ConditionGrade.refurbished_b,
                "Glaze is uneven near the neck (a firing flaw, not damage); new oil and reeds.",
                stock={CENTRAL: 2}),
        ),
    ),
    DemoProduct(
        slug="ultrasonic-ceramic-diffuser", name="Ultrasonic ceramic diffuser",
        family="restored-diffusers",
        description="An electric mist diffuser in a porcelain shell (UK plug).",
        popularity=0.7,
        variants=(
            DemoVariant(
                "EF-RD-SONIC-RA", "Restored, grade A", 6400, 1100, ConditionGrade.refurbished_a,
                "Returned within 14 days; PAT-tested, new water tank seal. Looks new.",
                stock={CENTRAL: 3}),
            DemoVariant(
                "EF-RD-SONIC-USED", "Used", 3900, 1100, ConditionGrade.used,
                "Ex-display unit with about 200 hours of use: PAT-tested and working; the "
                "porcelain shell has two small scratches on the back. Final sale.",
                final_sale=True, stock={CENTRAL: 1}),
        ),
    ),
)


@dataclass(frozen=True)
class DemoLocation:
    code: str
    name: str
    kind: LocationKind
    address: str
    latitude: float
    longitude: float
    # Micro-hubs opened during the demo year: hub-window deliveries start from this day.
    opened_days_ago: int = LAUNCH_DAYS_AGO
    # Postcode districts a hub delivers to by cargo bike within a window.
    districts: tuple[str, ...] = ()


LOCATIONS: tuple[DemoLocation, ...] = (
    DemoLocation(CENTRAL, "Park Royal warehouse", LocationKind.central_warehouse,
                 "Unit 7, Abbey Road Industrial Estate, Park Royal, London NW10 7TR",
                 51.5290, -0.2740),
    DemoLocation("hub-hackney", "Hackney micro-hub", LocationKind.micro_hub,
                 "Arch 312, Mentmore Terrace, London E8 3PN", 51.5430, -0.0570,
                 opened_days_ago=240, districts=("E8", "E9", "E5", "N16", "E2")),
    DemoLocation("hub-brixton", "Brixton micro-hub", LocationKind.micro_hub,
                 "Arch 4, Atlantic Road, London SW9 8HX", 51.4613, -0.1147,
                 opened_days_ago=180, districts=("SW2", "SW9", "SE24", "SE5")),
    DemoLocation("hub-camden", "Camden micro-hub", LocationKind.micro_hub,
                 "Unit 2, Camden Lock Place, London NW1 8AF", 51.5417, -0.1466,
                 opened_days_ago=130, districts=("NW1", "NW5", "N7", "N1")),
    DemoLocation("hub-clapham", "Clapham micro-hub", LocationKind.micro_hub,
                 "Arch 41, Voltaire Road, London SW4 6DQ", 51.4651, -0.1410,
                 opened_days_ago=90, districts=("SW4", "SW11", "SW8", "SW12")),
    DemoLocation(FACTORY, "Bermondsey micro-factory", LocationKind.micro_factory,
                 "Arch 9, Druid Street, London SE1 2HH", 51.5010, -0.0770),
    DemoLocation("popup-spitalfields", "Spitalfields Market pop-up", LocationKind.pop_up,
                 "Old Spitalfields Market, Brushfield Street, London E1 6EW", 51.5197, -0.0753),
    DemoLocation("popup-peckham", "Peckham Levels pop-up", LocationKind.pop_up,
                 "Peckham Levels, 95a Rye Lane, London SE15 4ST", 51.4700, -0.0690),
)


@dataclass(frozen=True)
class Campaign:
    source: str
    name: str
    # Active between these many days before "now" (start > end).
    start_days_ago: int
    end_days_ago: int


SOURCE_WEIGHTS: dict[str, float] = {
    "instagram": 0.26, "tiktok": 0.14, "pop-up": 0.10, "referral": 0.12,
    "newsletter": 0.10, "direct": 0.16, "google": 0.12,
}

CAMPAIGNS: tuple[Campaign, ...] = (
    Campaign("instagram", "ig-launch", 365, 300),
    Campaign("instagram", "ig-fig-leaf-reels", 280, 150),
    Campaign("instagram", "ig-winter-gifting", 120, 60),
    Campaign("instagram", "ig-spring-drop", 55, 0),
    Campaign("tiktok", "tt-smell-of-london", 210, 170),
    Campaign("tiktok", "tt-refill-routine", 100, 0),
    Campaign("pop-up", "spitalfields-weekends", 365, 0),
    Campaign("pop-up", "peckham-summer", 300, 210),
    Campaign("referral", "give-10-get-10", 365, 0),
    Campaign("newsletter", "welcome-15", 365, 0),
    Campaign("google", "brand-search", 365, 0),
    Campaign("google", "gift-guides", 110, 65),
)

# First-order discounts (percent) that come with a campaign.
CAMPAIGN_DISCOUNT_PERCENT: dict[str, int] = {"give-10-get-10": 10, "welcome-15": 15}

# What each channel tends to buy (weights over families).
FAMILY_TASTE: dict[str, dict[str, float]] = {
    "instagram": {"eau-de-parfum": 4, "candles": 3, "discovery-sets": 2, "restored-diffusers": 0.4},
    "tiktok": {"eau-de-parfum": 2, "candles": 3, "discovery-sets": 4, "restored-diffusers": 0.3},
    "pop-up": {"eau-de-parfum": 5, "candles": 2, "discovery-sets": 3, "restored-diffusers": 0.5},
    "referral": {"eau-de-parfum": 5, "candles": 2, "discovery-sets": 1, "restored-diffusers": 0.3},
    "newsletter": {"eau-de-parfum": 3, "candles": 3, "discovery-sets": 1,
                   "restored-diffusers": 0.6},
    "direct": {"eau-de-parfum": 4, "candles": 3, "discovery-sets": 2, "restored-diffusers": 0.5},
    "google": {"eau-de-parfum": 4, "candles": 2, "discovery-sets": 3, "restored-diffusers": 0.3},
}

# Where shoppers live: London districts (some inside a hub's area) and the rest of the UK.
DISTRICTS: tuple[tuple[str, str, float], ...] = (
    ("E8", "London", 4), ("E9", "London", 2), ("E5", "London", 1.5), ("N16", "London", 2),
    ("E2", "London", 2), ("SW2", "London", 2), ("SW9", "London", 2), ("SE24", "London", 1),
    ("SE5", "London", 1.5), ("NW1", "London", 2), ("NW5", "London", 1.5), ("N7", "London", 1),
    ("N1", "London", 2.5), ("SW4", "London", 2.5), ("SW11", "London", 2), ("SW8", "London", 1),
    ("SW12", "London", 1), ("SE15", "London", 2), ("E1", "London", 2), ("W12", "London", 1.5),
    ("NW6", "London", 1.5), ("SE1", "London", 1.5), ("W2", "London", 1), ("E17", "London", 2),
    ("M1", "Manchester", 2), ("M20", "Manchester", 1.5), ("BS6", "Bristol", 2),
    ("EH6", "Edinburgh", 1.5), ("G12", "Glasgow", 1), ("LS6", "Leeds", 1.5),
    ("BN1", "Brighton", 2), ("OX4", "Oxford", 1), ("CB1", "Cambridge", 1), ("B13", "Birmingham", 1),
    ("CF10", "Cardiff", 0.8), ("NE1", "Newcastle", 0.8),
)

FIRST_NAMES = (
    "Ada", "Amara", "Ben", "Chloe", "Dev", "Eleanor", "Femi", "Grace", "Hamza", "Imogen",
    "Jonah", "Kemi", "Leo", "Maya", "Noor", "Olu", "Priya", "Quinn", "Rosa", "Sam", "Tariq",
    "Una", "Vik", "Wren", "Yusuf", "Zoe", "Aisha", "Callum", "Dara", "Esme", "Finn", "Hana",
    "Isla", "Kit", "Lola", "Mateo", "Nia", "Oscar", "Poppy", "Ravi",
)
LAST_NAMES = (
    "Adeyemi", "Bennett", "Chowdhury", "Doyle", "Evans", "Fraser", "Gupta", "Hughes", "Iqbal",
    "Jones", "Kowalski", "Lewis", "Mensah", "Nwosu", "O'Brien", "Patel", "Quinn", "Rossi",
    "Shah", "Taylor", "Usman", "Vance", "Walsh", "Xu", "Young", "Zielinski", "Ahmed", "Brown",
    "Campbell", "Davies", "Edwards", "Khan", "Murphy", "Okafor", "Robinson", "Singh",
)
STREETS = (
    "Mare Street", "Dalston Lane", "Coldharbour Lane", "Acre Lane", "Kentish Town Road",
    "Upper Street", "Lavender Hill", "Northcote Road", "Rye Lane", "Lordship Lane",
    "Stoke Newington Church Street", "Chatsworth Road", "Brick Lane", "Goldhawk Road",
    "Hoe Street", "High Street", "Station Road", "Victoria Road", "Church Road", "Park Road",
)
