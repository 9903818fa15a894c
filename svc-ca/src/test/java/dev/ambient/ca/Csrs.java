package dev.ambient.ca;

import java.security.KeyPair;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.asn1.x500.RDN;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.ExtensionsGenerator;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;

/** Malformed CSRs a careless or hostile client might send. */
final class Csrs {

    private Csrs() {}

    /** Properly signed, but with two URI SANs. */
    static String withTwoSans(String first, String second) throws Exception {
        return withSans(first, second);
    }

    /** Properly signed, with exactly these URI SANs. */
    static String withSans(String... uris) throws Exception {
        KeyPair keys = CaClient.keys();
        ExtensionsGenerator extensions = new ExtensionsGenerator();
        GeneralName[] names = new GeneralName[uris.length];
        for (int i = 0; i < uris.length; i++) {
            names[i] = new GeneralName(GeneralName.uniformResourceIdentifier, uris[i]);
        }
        extensions.addExtension(Extension.subjectAlternativeName, true, new GeneralNames(names));
        var csr = new JcaPKCS10CertificationRequestBuilder(new X500Name(new RDN[0]), keys.getPublic())
                .addAttribute(PKCSObjectIdentifiers.pkcs_9_at_extensionRequest, extensions.generate())
                .build(new JcaContentSignerBuilder("SHA256withECDSA").build(keys.getPrivate()));
        return dev.ambient.identity.Pem.encodeCertificateRequest(csr);
    }
}
