"""Who is in the world: names, companies, roles, and how well each fits the seller's buyer persona.

The seller is a B2B SaaS company (our own product: lead scoring for revenue teams, website
``https://www.example.com/``). Its ideal customer is a VP or director of marketing, sales or revenue
operations at a software, finance or manufacturing company of 200–5,000 employees in a core market
(US, GB, DE, …). Poor fits are students and interns, free-mail addresses, tiny companies, unrelated
functions, and people at competitors.

Everything here is a pure function of a ``random.Random`` it is given, so the generator decides the
order of draws and the world stays deterministic.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "COMPETITORS",
    "IDEAL_INDUSTRIES",
    "UTC_OFFSET_HOURS",
    "ascii_fold",
    "Company",
    "Profile",
    "case_variant",
    "company_for_index",
    "draw_profile",
    "email_kind_of",
    "function_of_title",
    "persona_of",
    "persona_fit",
    "promotion",
]

# --- countries --------------------------------------------------------------------------------

# ISO 3166-1 alpha-2 (the UK is "GB"), weighted like a B2B SaaS contact base.
COUNTRY_WEIGHTS: dict[str, float] = {
    "US": 34, "GB": 10, "DE": 8, "CA": 5, "FR": 5, "IN": 6, "NL": 3, "AU": 3, "ES": 3, "BR": 3,
    "IT": 2, "SE": 2, "CH": 2, "PL": 2, "MX": 2, "JP": 2, "IL": 1.5, "DK": 1, "NO": 1, "FI": 1,
    "AT": 1, "BE": 1, "IE": 1, "PT": 1, "AR": 1, "SG": 1, "AE": 1, "ZA": 1, "NG": 0.8, "SA": 0.7,
    "EG": 0.5,
}  # fmt: skip
CORE_MARKETS = frozenset(
    {"US", "GB", "DE", "CA", "FR", "NL", "AU", "IE", "CH", "AT", "SE", "DK", "NO", "FI", "BE"}
)
SECONDARY_MARKETS = frozenset({"ES", "IT", "PT", "PL", "JP", "SG", "IL", "AE"})

COUNTRY_LOCALE = {
    "US": "en", "GB": "en", "CA": "en", "AU": "en", "IE": "en", "ZA": "en", "NG": "en", "SG": "en",
    "DE": "de", "AT": "de", "CH": "de", "FR": "fr", "BE": "fr", "NL": "nl", "ES": "es", "MX": "es",
    "AR": "es", "IT": "it", "PT": "pt", "BR": "pt", "SE": "nordic", "DK": "nordic", "NO": "nordic",
    "FI": "nordic", "PL": "pl", "IN": "in", "JP": "ja", "IL": "he", "AE": "ar", "SA": "ar", "EG": "ar",
}  # fmt: skip

# Whole hours from UTC, good enough to put human activity in local working hours.
UTC_OFFSET_HOURS = {
    "US": -6, "CA": -5, "MX": -6, "BR": -3, "AR": -3, "GB": 0, "IE": 0, "PT": 0, "DE": 1, "AT": 1,
    "CH": 1, "FR": 1, "BE": 1, "NL": 1, "ES": 1, "IT": 1, "SE": 1, "DK": 1, "NO": 1, "PL": 1, "NG": 1,
    "FI": 2, "IL": 2, "EG": 2, "ZA": 2, "SA": 3, "AE": 4, "IN": 5, "SG": 8, "JP": 9, "AU": 10,
}  # fmt: skip

COUNTRY_TLD = {
    "US": "com", "GB": "co.uk", "CA": "ca", "AU": "com.au", "IE": "ie", "ZA": "co.za", "NG": "com.ng",
    "SG": "sg", "DE": "de", "AT": "at", "CH": "ch", "FR": "fr", "BE": "be", "NL": "nl", "ES": "es",
    "MX": "com.mx", "AR": "com.ar", "IT": "it", "PT": "pt", "BR": "com.br", "SE": "se", "DK": "dk",
    "NO": "no", "FI": "fi", "PL": "pl", "IN": "in", "JP": "co.jp", "IL": "co.il", "AE": "ae",
    "SA": "sa", "EG": "com.eg",
}  # fmt: skip

# --- names ------------------------------------------------------------------------------------

# Latin-script names carry their accents; emails use an ASCII folding of them.
FIRST_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("James", "Mary", "Olivia", "Liam", "Emma", "Noah", "Ava", "Ethan", "Sophia", "Mason", "Chloe",
           "Lucas", "Grace", "Daniel", "Hannah", "Michael", "Zoë", "Aaron", "Megan", "Ryan", "Aisha",
           "Kwame", "Priya", "Chidi", "Siobhán", "Connor", "Renée", "Jamal", "Lauren", "Tyler"),
    "de": ("Lukas", "Anna", "Jürgen", "Sophie", "Maximilian", "Lea", "Jörg", "Marie", "Felix", "Lena",
           "Björn", "Katharina", "Uwe", "Jana", "Stefan", "Sören", "Hannelore", "Tobias", "Käthe", "Niklas"),
    "fr": ("Camille", "Léa", "Hugo", "Chloé", "Théo", "Manon", "Louis", "Inès", "Jérôme", "Élodie",
           "François", "Amélie", "Nicolas", "Océane", "Benoît", "Hélène", "Gaël", "Margaux"),
    "nl": ("Daan", "Sanne", "Bram", "Femke", "Sem", "Lotte", "Joris", "Anouk", "Thijs", "Eline", "Ruud"),
    "es": ("José", "María", "Alejandro", "Lucía", "Javier", "Sofía", "Andrés", "Valentina", "Ramón",
           "Martina", "Iñigo", "Begoña", "Carlos", "Ana", "Sebastián", "Ximena"),
    "it": ("Giulia", "Marco", "Francesca", "Luca", "Chiara", "Niccolò", "Alessandro", "Martina", "Matteo"),
    "pt": ("João", "Ana", "Gonçalo", "Beatriz", "Tiago", "Mariana", "Luís", "Inês", "Thiago", "Letícia",
           "Caio", "Larissa"),
    "nordic": ("Lars", "Ingrid", "Søren", "Astrid", "Mikael", "Åsa", "Björn", "Freja", "Jukka", "Aino",
               "Ole", "Sigrid", "Mette", "Päivi"),
    "pl": ("Łukasz", "Agnieszka", "Piotr", "Małgorzata", "Krzysztof", "Zofia", "Paweł", "Joanna"),
    "in": ("Aarav", "Priya", "Rohan", "Ananya", "Vikram", "Kavya", "Arjun", "Divya", "Rahul", "Sneha",
           "Sanjay", "Meera"),
    "ja": ("Haruto", "Yui", "Sota", "Hina", "Ren", "Sakura", "Kenji", "Yuki", "Takumi", "Aoi"),
}  # fmt: skip
LAST_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Taylor",
           "Anderson", "Thomas", "Moore", "Clark", "Lewis", "Walker", "Hall", "Young", "O'Brien",
           "Okafor", "Nguyen", "Patel", "Kim", "Mensah", "Murphy", "Evans", "Hughes", "Robinson"),
    "de": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schäfer",
           "Koch", "Hoffmann", "Schröder", "Krüger", "Weiß", "Groß", "Lehmann", "Köhler", "Bauer"),
    "fr": ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Petit", "Durand", "Lefèvre", "Moreau",
           "Girard", "Bonnet", "Rousseau", "Fournier", "Lambert", "Faure", "Mercier"),
    "nl": ("de Jong", "Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit", "Meijer", "de Boer"),
    "es": ("García", "Rodríguez", "Martínez", "López", "González", "Pérez", "Sánchez", "Ramírez",
           "Torres", "Ruiz", "Núñez", "Jiménez", "Muñoz", "Ibáñez"),
    "it": ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Mancini"),
    "pt": ("Silva", "Santos", "Ferreira", "Pereira", "Oliveira", "Costa", "Rodrigues", "Gonçalves",
           "Araújo", "Simões"),
    "nordic": ("Andersson", "Johansson", "Nielsen", "Hansen", "Jensen", "Sørensen", "Virtanen",
               "Korhonen", "Lindqvist", "Åberg", "Bergström", "Østergaard", "Mäkinen"),
    "pl": ("Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński", "Lewandowski", "Zieliński"),
    "in": ("Sharma", "Verma", "Gupta", "Iyer", "Reddy", "Nair", "Patel", "Singh", "Mehta", "Chatterjee"),
    "ja": ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura", "Kobayashi"),
}  # fmt: skip

# Right-to-left scripts: (as the person typed it, transliteration for the email address).
RTL_FIRST_NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "ar": (("محمد", "mohamed"), ("فاطمة", "fatima"), ("أحمد", "ahmed"), ("ليلى", "layla"), ("عمر", "omar"),
           ("نور", "nour"), ("يوسف", "youssef"), ("مريم", "mariam"), ("خالد", "khaled"), ("سارة", "sara")),
    "he": (("נועה", "noa"), ("דוד", "david"), ("תמר", "tamar"), ("יוסף", "yosef"), ("מיכל", "michal"),
           ("אורי", "uri"), ("שירה", "shira"), ("איתי", "itai")),
}  # fmt: skip
RTL_LAST_NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "ar": (("الحسن", "alhassan"), ("منصور", "mansour"), ("حداد", "haddad"), ("الشمري", "alshammari"),
           ("عبدالله", "abdullah"), ("سالم", "salem"), ("النجار", "alnajjar")),
    "he": (("כהן", "cohen"), ("לוי", "levi"), ("מזרחי", "mizrahi"), ("פרץ", "peretz"), ("ביטון", "biton"),
           ("אברהם", "avraham")),
}  # fmt: skip
# The same people as they often appear in Latin script (half of them type it that way).
RTL_LATIN_FIRST = {"ar": ("Mohamed", "Fatima", "Ahmed", "Layla", "Omar", "Nour", "Youssef", "Mariam"),
                   "he": ("Noa", "David", "Tamar", "Yosef", "Michal", "Uri", "Shira", "Itai")}  # fmt: skip
RTL_LATIN_LAST = {"ar": ("Al-Hassan", "Mansour", "Haddad", "Al-Shammari", "Abdullah", "Salem"),
                  "he": ("Cohen", "Levi", "Mizrahi", "Peretz", "Biton", "Avraham")}  # fmt: skip

# --- companies --------------------------------------------------------------------------------

INDUSTRY_WEIGHTS: dict[str, float] = {
    "software": 22, "finance": 12, "manufacturing": 12, "healthcare": 9, "retail": 9, "consulting": 8,
    "education": 4, "media": 5, "logistics": 5, "telecom": 3, "energy": 4, "government": 3, "nonprofit": 3,
}  # fmt: skip
IDEAL_INDUSTRIES = frozenset({"software", "finance", "manufacturing"})

_INDUSTRY_NOUNS = {
    "software": ("Software", "Labs", "Systems", "Cloud", "Analytics", "Technologies", "Data"),
    "finance": ("Capital", "Bank", "Financial", "Insurance", "Payments", "Asset Management"),
    "manufacturing": ("Industries", "Manufacturing", "Components", "Machines", "Materials", "Werke"),
    "healthcare": ("Health", "Medical", "Clinics", "Pharma", "Care"),
    "retail": ("Retail", "Stores", "Market", "Outfitters", "Goods"),
    "consulting": ("Consulting", "Partners", "Advisory", "Group"),
    "education": ("Learning", "Academy", "Education"),
    "media": ("Media", "Studios", "Publishing", "Digital"),
    "logistics": ("Logistics", "Freight", "Shipping", "Transport"),
    "telecom": ("Telecom", "Networks", "Communications"),
    "energy": ("Energy", "Power", "Renewables", "Solar"),
    "government": ("Agency", "Council", "Authority"),
    "nonprofit": ("Foundation", "Trust", "Alliance"),
}
_NAME_ROOTS = (
    "Acme", "Northwind", "Bluefin", "Granite", "Summit", "Apex", "Harbor", "Cedar", "Vertex", "Orbit",
    "Falcon", "Maple", "Atlas", "Nova", "Pioneer", "Silverline", "Redwood", "Quantum", "Ironclad", "Brightwave",
    "Lumen", "Crescent", "Evergreen", "Keystone", "Meridian", "Polar", "Sterling", "Tidewater", "Beacon",
    "Copperleaf", "Driftwood", "Foxglove", "Horizon", "Juniper", "Kestrel", "Larkspur", "Monarch", "Oakridge",
    "Prism", "Riverton", "Sable", "Trillium", "Umber", "Wavecrest", "Zephyr", "Blackbird", "Cobalt", "Halcyon",
)  # fmt: skip
# Locale-flavoured roots, with the accents real company names have.
_LOCAL_ROOTS = {
    "de": ("Nordlicht", "Bergmann", "Schäfer", "Müller", "Rheinwerk", "Alpenglück", "Südstern", "Grünwald"),
    "fr": ("Étoile", "Lumière", "Côte", "Boulanger", "Rivière", "Arc-en-Ciel", "Mistral"),
    "es": ("Sol", "Montaña", "Peñalara", "Ibérica", "Río Claro", "Andalucía"),
    "pt": ("Horizonte", "Atlântico", "São Bento", "Estrela"),
    "nordic": ("Fjord", "Ångström", "Nordvik", "Solberg", "Kvist", "Hygge"),
    "it": ("Aurora", "Ponte", "Vesuvio", "Città"),
    "nl": ("Zeewind", "Molen", "Oranje"),
    "pl": ("Wisła", "Łódź Tech", "Bursztyn"),
}  # fmt: skip
_LEGAL_SUFFIX = {
    "US": ("Inc.", "LLC", "Corp."), "CA": ("Inc.", "Ltd."), "GB": ("Ltd", "plc"), "IE": ("Ltd",),
    "AU": ("Pty Ltd",), "DE": ("GmbH", "AG", "GmbH & Co. KG"), "AT": ("GmbH",), "CH": ("AG", "GmbH"),
    "FR": ("SAS", "SA"), "BE": ("SA", "NV"), "NL": ("B.V.",), "ES": ("S.L.", "S.A."), "MX": ("S.A. de C.V.",),
    "IT": ("S.p.A.", "S.r.l."), "PT": ("Lda.",), "BR": ("Ltda.",), "SE": ("AB",), "DK": ("A/S",),
    "NO": ("AS",), "FI": ("Oy",), "PL": ("sp. z o.o.",), "IN": ("Pvt Ltd",), "JP": ("K.K.",),
}  # fmt: skip

# Competitors of the seller: their staff sign up to read the blog and the pricing page.
COMPETITORS: tuple[tuple[str, str], ...] = (
    ("Scorewise", "scorewise.io"),
    ("LeadPulse", "leadpulse.com"),
    ("FunnelForge", "funnelforge.com"),
    ("Pipeline Oracle", "pipelineoracle.ai"),
    ("RevGauge", "revgauge.io"),
    ("Qualify Labs", "qualifylabs.com"),
)
UNIVERSITIES: tuple[tuple[str, str, str], ...] = (
    ("State University", "stateu.edu", "US"),
    ("Lakeside College", "lakeside.edu", "US"),
    ("University of Northbridge", "northbridge.ac.uk", "GB"),
    ("Technische Hochschule Rheinland", "th-rheinland.de", "DE"),
    ("Université de Lumière", "univ-lumiere.fr", "FR"),
    ("Universidad del Sol", "usol.es", "ES"),
    ("Institute of Management Studies", "ims.ac.in", "IN"),
    ("Universidade Atlântica", "uatlantica.br", "BR"),
)
FREEMAIL: dict[str, tuple[str, ...]] = {
    "*": ("gmail.com", "gmail.com", "gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "icloud.com"),
    "DE": ("gmx.de", "web.de", "t-online.de"),
    "FR": ("orange.fr", "free.fr", "laposte.net"),
    "GB": ("btinternet.com", "yahoo.co.uk"),
    "BR": ("uol.com.br", "bol.com.br"),
    "IN": ("rediffmail.com",),
    "JP": ("yahoo.co.jp",),
}

# --- roles ------------------------------------------------------------------------------------

FUNCTION_WEIGHTS: dict[str, float] = {
    "marketing": 24, "sales": 19, "revops": 5, "finance": 8, "engineering": 12, "it": 6, "product": 6,
    "operations": 7, "hr": 5, "customer_success": 5, "data": 3,
}  # fmt: skip
_FUNCTION_LABEL = {
    "marketing": "Marketing", "sales": "Sales", "revops": "Revenue Operations", "finance": "Finance",
    "engineering": "Engineering", "it": "IT", "product": "Product", "operations": "Operations",
    "hr": "People", "customer_success": "Customer Success", "data": "Data",
}  # fmt: skip
_C_LEVEL = {
    "marketing": ("CMO", "Chief Marketing Officer"), "sales": ("CRO", "Chief Revenue Officer", "Chief Sales Officer"),
    "revops": ("Chief Revenue Officer",), "finance": ("CFO", "Chief Financial Officer"),
    "engineering": ("CTO", "Chief Technology Officer"), "it": ("CIO", "Chief Information Officer"),
    "product": ("Chief Product Officer",), "operations": ("COO", "Chief Operating Officer"),
    "hr": ("Chief People Officer",), "customer_success": ("Chief Customer Officer",), "data": ("Chief Data Officer",),
}  # fmt: skip
_GENERAL_C_LEVEL = ("CEO", "Founder & CEO", "Co-Founder", "Managing Director", "Owner")
_INDIVIDUAL = {
    "marketing": ("Marketing Specialist", "Content Marketer", "Demand Generation Specialist",
                  "Marketing Coordinator", "Growth Marketer", "Email Marketing Specialist"),
    "sales": ("Account Executive", "Sales Development Representative", "Business Development Representative",
              "Account Manager", "Inside Sales Rep"),
    "revops": ("Revenue Operations Analyst", "Marketing Operations Specialist", "Sales Operations Analyst"),
    "finance": ("Financial Analyst", "Accountant", "Controller"),
    "engineering": ("Software Engineer", "Senior Software Engineer", "Developer", "DevOps Engineer"),
    "it": ("Systems Administrator", "IT Specialist", "Support Engineer"),
    "product": ("Product Manager", "Product Designer", "UX Researcher"),
    "operations": ("Operations Analyst", "Project Manager", "Office Manager"),
    "hr": ("Recruiter", "HR Generalist", "Talent Acquisition Specialist"),
    "customer_success": ("Customer Success Manager", "Support Specialist"),
    "data": ("Data Analyst", "Data Scientist", "Analytics Engineer"),
}  # fmt: skip
# Titles as people write them in their own language (DE, FR, ES markets), by (seniority, function).
_LOCAL_TITLES = {
    "de": {("c-level", "*"): ("Geschäftsführer", "Geschäftsführerin", "Vorstand"),
           ("director", "marketing"): ("Leiter Marketing", "Marketingleiterin"),
           ("director", "sales"): ("Vertriebsleiter", "Leiterin Vertrieb"),
           ("manager", "marketing"): ("Marketing Manager",), ("individual", "marketing"): ("Marketingreferentin",),
           ("individual", "sales"): ("Vertriebsmitarbeiter", "Außendienstmitarbeiter"),
           ("manager", "sales"): ("Key Account Manager",), ("individual", "finance"): ("Buchhalterin",)},
    "fr": {("c-level", "*"): ("Directeur Général", "Président", "Gérant"),
           ("director", "marketing"): ("Directrice Marketing", "Directeur Marketing"),
           ("director", "sales"): ("Directeur Commercial",), ("manager", "sales"): ("Responsable Commercial",),
           ("manager", "marketing"): ("Responsable Marketing", "Chef de projet marketing"),
           ("individual", "sales"): ("Chargé d'affaires",), ("individual", "engineering"): ("Ingénieur logiciel",)},
    "es": {("c-level", "*"): ("Director General", "Consejero Delegado"),
           ("director", "marketing"): ("Directora de Marketing", "Director de Marketing"),
           ("director", "sales"): ("Director de Ventas", "Directora Comercial"),
           ("manager", "marketing"): ("Responsable de Marketing",), ("individual", "sales"): ("Ejecutivo de Cuentas",)},
}  # fmt: skip
_SENIORITY_WEIGHTS = {"c-level": 5, "vp": 8, "director": 14, "manager": 25, "individual": 44, "intern": 4}
_ICP_SENIORITY = {"c-level": 10, "vp": 35, "director": 40, "manager": 15}
_ICP_FUNCTIONS = {"marketing": 40, "sales": 28, "revops": 22, "customer_success": 5, "operations": 5}

# --- fit --------------------------------------------------------------------------------------

_SENIORITY_FIT = {"c-level": 0.8, "vp": 1.0, "director": 0.95, "manager": 0.55, "individual": 0.25, "intern": 0.05,
                  "student": 0.02}  # fmt: skip
_FUNCTION_FIT = {"marketing": 1.0, "sales": 1.0, "revops": 1.0, "general": 0.75, "customer_success": 0.5,
                 "product": 0.4, "operations": 0.4, "finance": 0.35, "data": 0.35, "it": 0.25, "engineering": 0.2,
                 "hr": 0.1, "study": 0.05}  # fmt: skip
_INDUSTRY_FIT = {"software": 1.0, "finance": 1.0, "manufacturing": 1.0, "consulting": 0.65, "telecom": 0.65,
                 "media": 0.55, "healthcare": 0.55, "logistics": 0.55, "retail": 0.45, "energy": 0.45,
                 "education": 0.2, "government": 0.2, "nonprofit": 0.2}  # fmt: skip


def _size_fit(size: int | None) -> float:
    if size is None:
        return 0.4
    if size < 10:
        return 0.05
    if size < 50:
        return 0.3
    if size < 200:
        return 0.6
    if size <= 5000:
        return 1.0
    return 0.7 if size <= 20000 else 0.5


def _country_fit(country: str | None) -> float:
    if country is None:
        return 0.5
    if country in CORE_MARKETS:
        return 1.0
    return 0.6 if country in SECONDARY_MARKETS else 0.35


def persona_fit(
    *,
    seniority: str | None,
    function: str | None,
    industry: str | None,
    size: int | None,
    country: str | None,
    email_kind: str,
) -> float:
    """How well a person matches the buyer persona, 0–1 (the hidden truth affinity should find).

    A weighted geometric mean of role, industry, size and market, so one bad dimension (a student,
    a two-person shop) drags the whole down; damped for free-mail addresses; people at competitors
    never fit. Unknown attributes count as middling.
    """
    if email_kind == "competitor":
        return 0.0
    score = (
        _SENIORITY_FIT.get(seniority or "", 0.4) ** 0.30
        * _FUNCTION_FIT.get(function or "", 0.4) ** 0.25
        * _INDUSTRY_FIT.get(industry or "", 0.5) ** 0.15
        * _size_fit(size) ** 0.20
        * _country_fit(country) ** 0.10
    )
    if email_kind == "freemail":
        score *= 0.6
    return round(score, 3)


def persona_of(fit: float, kind: str) -> str:
    """The persona label kept in the hidden truth: a kind for special cases, else a fit band."""
    if kind in ("competitor", "student"):
        return kind
    if fit >= 0.8:
        return "ideal"
    if fit >= 0.6:
        return "good"
    return "average" if fit >= 0.4 else "poor"


# --- drawing ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Company:
    name: str
    domain: str
    industry: str
    size: int
    country: str


@dataclass(frozen=True, slots=True)
class Profile:
    """A person's attributes before they join any platform, with the hidden fit inputs."""

    first_name: str
    last_name: str
    email_local: str  # before uniqueness suffixes
    email_domain: str
    email_kind: str  # work, freemail, competitor, university
    job_title: str | None
    seniority: str | None
    function: str
    company: str | None
    industry: str | None
    company_size: int | None
    country: str | None
    kind: str  # icp, general, student, competitor: how the person was drawn
    fit: float


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(tuple(weights), weights=tuple(weights.values()))[0]


def ascii_fold(text: str) -> str:
    """Lower-case ASCII for email addresses and domains: accents dropped, ß → ss, ø → o, ł → l."""
    text = text.replace("ß", "ss").replace("ø", "o").replace("Ø", "O").replace("ł", "l").replace("Ł", "L")
    text = text.replace("æ", "ae").replace("Æ", "Ae").replace("đ", "d")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if ch.isascii() and (ch.isalnum() or ch in " -")).lower()


def _slug(text: str) -> str:
    return "".join(ch for ch in ascii_fold(text) if ch.isalnum())


def _company_size(rng: random.Random) -> int:
    low, high = rng.choices(
        ((1, 9), (10, 49), (50, 199), (200, 999), (1000, 4999), (5000, 50000)),
        weights=(15, 20, 20, 20, 13, 12),
    )[0]
    # Log-uniform inside the band; real fields hold round-ish numbers.
    size = int(round(low * (high / low) ** rng.random()))
    return size if size < 100 else int(round(size, -1 if size < 1000 else -2))


def company_for_index(seed: int, index: int) -> Company:
    """Company number ``index`` of the world with this seed: the same on every call."""
    rng = random.Random(f"{seed}/company/{index}")
    country = _weighted(rng, COUNTRY_WEIGHTS)
    industry = _weighted(rng, INDUSTRY_WEIGHTS)
    size = _company_size(rng)
    locale = COUNTRY_LOCALE[country]
    local_roots = _LOCAL_ROOTS.get(locale)
    root = rng.choice(local_roots) if local_roots and rng.random() < 0.5 else rng.choice(_NAME_ROOTS)
    noun = rng.choice(_INDUSTRY_NOUNS[industry])
    base = f"{root} {noun}" if rng.random() < 0.7 else root
    suffixes = _LEGAL_SUFFIX.get(country)
    name = f"{base} {rng.choice(suffixes)}" if suffixes and rng.random() < 0.6 else base
    tld = "io" if industry == "software" and rng.random() < 0.4 else COUNTRY_TLD[country]
    domain = f"{_slug(base if rng.random() < 0.5 else root)}.{tld}"
    return Company(name=name, domain=domain, industry=industry, size=size, country=country)


def _names(rng: random.Random, country: str | None) -> tuple[str, str, str, str]:
    """(first, last) as typed, and their ASCII forms for the email address."""
    locale = COUNTRY_LOCALE.get(country or "US", "en")
    if locale == "en" and rng.random() < 0.2:  # English-speaking markets are diverse
        locale = rng.choice(("es", "in", "de", "fr", "it", "pl", "ar", "ja"))
    if locale in RTL_FIRST_NAMES:
        if rng.random() < 0.5:
            first, first_ascii = rng.choice(RTL_FIRST_NAMES[locale])
            last, last_ascii = rng.choice(RTL_LAST_NAMES[locale])
            return first, last, first_ascii, last_ascii
        first, last = rng.choice(RTL_LATIN_FIRST[locale]), rng.choice(RTL_LATIN_LAST[locale])
    else:
        first, last = rng.choice(FIRST_NAMES[locale]), rng.choice(LAST_NAMES[locale])
    return first, last, ascii_fold(first).replace(" ", ""), ascii_fold(last).replace(" ", "").replace("'", "")


def _email_local(rng: random.Random, first: str, last: str, *, personal: bool) -> str:
    first, last = first.replace("-", ""), last.replace("-", "")
    pattern = rng.choices(
        ("first.last", "flast", "first", "firstlast", "first_last", "f.last", "last.first"),
        weights=(45, 15, 8, 10, 5, 12, 5),
    )[0]
    local = {
        "first.last": f"{first}.{last}",
        "flast": f"{first[:1]}{last}",
        "first": first,
        "firstlast": f"{first}{last}",
        "first_last": f"{first}_{last}",
        "f.last": f"{first[:1]}.{last}",
        "last.first": f"{last}.{first}",
    }[pattern]
    if personal and rng.random() < 0.6:
        local += str(rng.choice((rng.randint(1, 99), rng.randint(1960, 2006))))
    return local


def _job_title(rng: random.Random, seniority: str, function: str, country: str | None) -> str:
    locale = COUNTRY_LOCALE.get(country or "", "")
    local = _LOCAL_TITLES.get(locale)
    if local and rng.random() < 0.4:
        options = local.get((seniority, function)) or (
            local.get(("c-level", "*")) if seniority == "c-level" else None
        )
        if options:
            return rng.choice(options)
    label = _FUNCTION_LABEL[function]
    if seniority == "c-level":
        return rng.choice(_GENERAL_C_LEVEL) if rng.random() < 0.35 else rng.choice(_C_LEVEL[function])
    if seniority == "vp":
        return rng.choice((f"VP {label}", f"VP of {label}", f"Vice President, {label}", f"SVP {label}"))
    if seniority == "director":
        return rng.choice(
            (f"Director of {label}", f"Head of {label}", f"{label} Director", f"Senior Director, {label}")
        )
    if seniority == "manager":
        return rng.choice((f"{label} Manager", f"Senior {label} Manager", f"{label} Team Lead"))
    if seniority == "intern":
        return rng.choice((f"{label} Intern", "Intern", f"Working Student {label}"))
    return rng.choice(_INDIVIDUAL[function])


CompanyPicker = Callable[[random.Random, bool], Company]


def draw_profile(rng: random.Random, pick_company: CompanyPicker) -> Profile:
    """One person's attributes. ``pick_company(rng, icp)`` picks their employer (shared with colleagues).

    Kinds: ``icp`` people come from the seller's target segment (its marketing attracts them),
    ``general`` people from everywhere, plus students and competitors' staff.
    """
    kind = rng.choices(("icp", "general", "student", "competitor"), weights=(22, 69.5, 6, 2.5))[0]
    if kind == "student":
        university, domain, country = rng.choice(UNIVERSITIES)
        seniority, function, industry, size = "student", "study", "education", None
        company: str | None = university
        title: str | None = rng.choice(("Student", "MBA Candidate", "Graduate Student", "Marketing Student"))
        email_kind = "university" if rng.random() < 0.35 else "freemail"
    elif kind == "competitor":
        company, domain = rng.choice(COMPETITORS)
        country = "US" if rng.random() < 0.6 else _weighted(rng, COUNTRY_WEIGHTS)
        seniority = _weighted(rng, _SENIORITY_WEIGHTS)
        function = rng.choice(("marketing", "product", "sales", "revops"))
        industry, size = "software", rng.choice((40, 85, 150, 320))
        title = _job_title(rng, seniority, function, country)
        email_kind = "competitor" if rng.random() < 0.9 else "freemail"
    else:
        employer = pick_company(rng, kind == "icp")
        company, domain, industry, size = employer.name, employer.domain, employer.industry, employer.size
        country = employer.country if rng.random() < 0.9 else _weighted(rng, COUNTRY_WEIGHTS)
        if kind == "icp":
            seniority, function = _weighted(rng, _ICP_SENIORITY), _weighted(rng, _ICP_FUNCTIONS)
        else:
            seniority, function = _weighted(rng, _SENIORITY_WEIGHTS), _weighted(rng, FUNCTION_WEIGHTS)
        title = _job_title(rng, seniority, function, country)
        if seniority == "c-level" and title in _GENERAL_C_LEVEL + ("Geschäftsführer", "Directeur Général"):
            function = "general"
        personal_share = 0.04 if kind == "icp" else (0.25 if size < 10 else 0.1)
        email_kind = "freemail" if rng.random() < personal_share else "work"
    first, last, first_ascii, last_ascii = _names(rng, country)
    if email_kind == "freemail":
        domain = rng.choice(FREEMAIL.get(country or "", ()) + FREEMAIL["*"])
    local = _email_local(rng, first_ascii, last_ascii, personal=email_kind == "freemail")
    # The truth knows a competitor even when they sign up with a personal address.
    fit = persona_fit(
        seniority=seniority,
        function=function,
        industry=industry,
        size=size,
        country=country,
        email_kind=email_kind,
    )
    if kind == "competitor":
        fit = 0.0
    # Real records have holes: forms that skipped a field, imports without enrichment.
    if rng.random() < 0.07:
        title = None
    if rng.random() < 0.06:
        industry = None
    if rng.random() < 0.1:
        size = None
    if rng.random() < (0.12 if email_kind == "freemail" else 0.03):
        country = None
    if email_kind == "freemail" and rng.random() < 0.4:
        company = None
    return Profile(
        first_name=first,
        last_name=last,
        email_local=local,
        email_domain=domain,
        email_kind=email_kind,
        job_title=title,
        seniority=seniority,
        function=function,
        company=company,
        industry=industry,
        company_size=size,
        country=country,
        kind=kind,
        fit=fit,
    )


def case_variant(rng: random.Random, email: str) -> str:
    """The same address with different letter case, as another platform's form stored it."""
    local, _, domain = email.partition("@")
    style = rng.randrange(3)
    if style == 0:
        variant = ".".join(part[:1].upper() + part[1:] for part in local.split(".")) + "@" + domain
    elif style == 1:
        variant = email.upper()
    else:
        variant = local + "@" + domain[:1].upper() + domain[1:]
    return variant if variant != email else email.upper()


def function_of_title(title: str | None) -> str | None:
    """The business function a job title names (``None`` when it names none we know)."""
    if not title:
        return None
    # Words start at a boundary; abbreviations (cmo, it, hr) must also end at one.
    padded = " " + re.sub(r"[^\w]+", " ", title.lower()) + " "
    for function, words in _TITLE_WORDS:
        if any((f" {word} " if len(word) <= 3 else f" {word}") in padded for word in words):
            return function
    return None


_TITLE_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("study", ("student", "mba candidate")),
    (
        "general",
        (
            "ceo",
            "founder",
            "co founder",
            "owner",
            "managing director",
            "geschäftsführer",
            "vorstand",
            "directeur général",
            "président",
            "gérant",
            "director general",
            "consejero",
        ),
    ),
    ("revops", ("revenue", "marketing operations", "sales operations", "cro")),
    ("marketing", ("marketing", "cmo", "content", "growth", "demand")),
    ("sales", ("sales", "account", "business development", "vertrieb", "commercial", "ventas", "affaires")),
    ("finance", ("finance", "financial", "cfo", "accountant", "controller", "buchhalter")),
    ("customer_success", ("customer", "support specialist")),
    ("product", ("product", "ux")),
    ("data", ("data", "analytics")),
    ("engineering", ("engineer", "developer", "cto", "ingénieur")),
    ("it", ("it", "cio", "systems", "information")),
    ("hr", ("people", "hr", "recruit", "talent")),
    ("operations", ("operations", "coo", "project", "office")),
)


def email_kind_of(email: str) -> str:
    """work, freemail, competitor or university, from the address's domain."""
    domain = email.rpartition("@")[2].lower()
    if any(domain == competitor_domain for _, competitor_domain in COMPETITORS):
        return "competitor"
    if any(domain in domains for domains in FREEMAIL.values()):
        return "freemail"
    if any(domain == university_domain for _, university_domain, _ in UNIVERSITIES):
        return "university"
    return "work"


_PROMOTION = {
    "intern": "individual",
    "individual": "manager",
    "manager": "director",
    "director": "vp",
    "vp": "c-level",
}


def promotion(
    rng: random.Random, seniority: str | None, function: str | None, country: str | None
) -> tuple[str, str] | None:
    """A new (seniority, job title) one level up in the same function, or None at the top."""
    higher = _PROMOTION.get(seniority or "")
    if higher is None:
        return None
    if function is None or function in ("general", "study"):
        function = rng.choice(("marketing", "sales", "revops", "operations", "product"))
    return higher, _job_title(rng, higher, function, country)
