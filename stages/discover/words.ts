/**
 * The words discovery reads links, headings and addresses by, in the languages the extractor
 * knows (English, German, and the commoner Romance and Dutch forms). Each is a regular
 * expression over lower-cased text; the lists stay here, in one place, so a new language is one
 * edit.
 */

/**
 * Words that name a page of people: "Team", "Staff", "Mitarbeiter", "Personen", … and the
 * German compounds of the commonest ("Lehrstuhlteam", "Institutsmitarbeiter").
 */
export const PEOPLE_WORDS =
  /\b(((lehrstuhl|instituts?|fachgebiets?|abteilungs|gruppen|labor|professur|projekt)(team|mitarbeiter\w*|mitglieder))|teammitglieder|faculty (and|&) staff|(faculty|staff|people) directory|who'?s who|meet (the|our) team|our people|team|teams|people|staff|faculty members?|our faculty|members|personnel|employees|researchers|academic staff|mitarbeiter(innen|:innen|\*innen)?|mitarbeitende|beschäftigte|personen|personal|wissenschaftliche[rn]? mitarbeiter|lehrende|professor(inn)?en|professors|doktorand(inn)?en|phd students|postdocs|ansprechpartner(innen)?|kontaktpersonen|équipe|equipe|personnel|personale|persone|equipo|medewerkers|mensen|who we are|wer wir sind|our team|unser team|das team)\b/;

/** Words in an address that name a people page (`/team`, `/mitarbeiter/`, `/people.html`). */
export const PEOPLE_PATH =
  /(^|[/_.-])(team|people|staff|members|personen|personal|mitarbeiter(innen)?|mitarbeitende|beschaeftigte|ansprechpartner|faculty-members|our-team|equipe|personale|medewerkers)([/_.-]|$)/;

/**
 * Words that name a page with photos of people that is not a people page: news, events,
 * publications, calendars, galleries, jobs.
 */
export const AVOID_WORDS =
  /\b(news|newsroom|press|presse|aktuelles|aktuell|neuigkeiten|meldungen|nachrichten|pressemitteilung(en)?|events?|veranstaltung(en)?|termine|kalender|calendar|agenda|publications?|publikationen|veröffentlichungen|papers|bibliography|blog|gallery|galerie|fotos|photos|bilder|jobs|stellen(angebote)?|karriere|careers?|vacancies|alumni|archive|archiv|seminars?|colloquium|kolloquium|talks|vorträge|lectures|courses|lehrveranstaltungen|studium|study|admissions|login|anmelden|shop|search|suche|print|drucken|rss|feed|ical|ics)\b/;

/** Address pieces of the same kinds. */
export const AVOID_PATH =
  /(^|[/_.-])(news|press|presse|aktuelles|neuigkeiten|meldungen|events?|veranstaltungen|termine|kalender|calendar|agenda|publications?|publikationen|papers|blog|gallery|galerie|jobs|stellen|karriere|careers?|alumni|archive|archiv|tag|tags|category|author|feed|rss|ical|login|search|suche|print)([/_.-]|$)/;

/**
 * Words that name a unit of an organisation: the category a people page is proposed under
 * ("Department of Mechanical Engineering", "Lehrstuhl für Wirtschaftsinformatik").
 */
export const UNIT_WORDS =
  /\b(department|dept\.?|faculty|school|college|institute|institut|lehrstuhl|professur|fakultät|fachbereich|fachgebiet|abteilung|seminar für|zentrum|center|centre|division|chair|laboratory|lab|labor|group|arbeitsgruppe|forschungsgruppe|research group|section|sektion|klinik|clinic|unit|programme|program|département|dipartimento|departamento|facultad|vakgroep)\b/;

/** Words that lead to units or to who-we-are pages: worth a click on the way to a people page. */
export const HUB_WORDS =
  /\b(about|about us|über uns|ueber uns|wir über uns|institute?s?|departments|faculties|fakultäten|schools|units|einrichtungen|organisation|organization|organisation|struktur|structure|research groups|arbeitsgruppen|lehrstühle|professuren|chairs|labs|groups|contact|kontakt|directory|verzeichnis|who we are|wer wir sind|research|forschung)\b/;

/** Labels of links to another language version of the site. */
export const LANGUAGE_LABELS =
  /^(en|de|fr|it|es|nl|english|deutsch|français|francais|italiano|español|nederlands|english version|deutsche version)$/i;

/** Query parameters that carry a session, never a different page. */
export const SESSION_PARAMS =
  /^(sid|session|sessionid|session_id|jsessionid|phpsessid|aspsessionid\w*|cfid|cftoken|zenid|oscsid|s|sess|utm_\w+|fbclid|gclid|mc_cid|mc_eid)$/i;

/** Query parameters and path pieces of calendars: a date in any common spelling. */
export const DATE_PIECE =
  /(^|[/=_-])((19|20)\d\d[-/]?(0?[1-9]|1[0-2])([-/]?(0?[1-9]|[12]\d|3[01]))?)([/&_-]|$)|[?&](date|day|month|year|week|jahr|monat|tag|woche|cal|kalender)=/i;
