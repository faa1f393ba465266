// Loads an ontology with the OWL API (the library Protégé uses) and reports
// OWL 2 DL profile violations and unparsed triples. Run as a single-file
// program: java -cp "/usr/share/java/*" tools/OwlApiCheck.java FILE
// Prints one line "violations=N unparsed=M axioms=K classes=C" and then the
// problems; exit status 0 only when both counts are zero.
import java.io.File;
import org.semanticweb.owlapi.apibinding.OWLManager;
import org.semanticweb.owlapi.model.*;
import org.semanticweb.owlapi.profiles.*;
import org.semanticweb.owlapi.io.*;
import org.semanticweb.owlapi.formats.RDFDocumentFormat;

public class OwlApiCheck {
    public static void main(String[] args) throws Exception {
        OWLOntologyManager manager = OWLManager.createOWLOntologyManager();
        OWLOntology ontology = manager.loadOntologyFromOntologyDocument(new File(args[0]));
        OWLProfileReport report = new OWL2DLProfile().checkOntology(ontology);
        int unparsed = 0;
        OWLDocumentFormat format = manager.getOntologyFormat(ontology);
        StringBuilder details = new StringBuilder();
        if (format instanceof RDFDocumentFormat) {
            RDFParserMetaData meta = (RDFParserMetaData) format.getOntologyLoaderMetaData().orElse(null);
            if (meta != null) {
                for (Object t : meta.getUnparsedTriples().toArray()) {
                    unparsed++;
                    details.append("unparsed: ").append(t).append('\n');
                }
            }
        }
        for (OWLProfileViolation v : report.getViolations()) {
            details.append("violation: ").append(v).append('\n');
        }
        System.out.println("violations=" + report.getViolations().size() + " unparsed=" + unparsed
            + " axioms=" + ontology.getAxiomCount() + " classes=" + ontology.getClassesInSignature().size());
        System.out.print(details);
        System.exit(report.getViolations().isEmpty() && unparsed == 0 ? 0 : 1);
    }
}
